from django import template

from generation import roles

register = template.Library()


@register.simple_tag(takes_context=True)
def nav_roles(context) -> dict:
    """Which sections the nav shows for the signed-in user."""
    user = context.get("user")
    mine = roles.user_roles(user) if user is not None else frozenset()
    admin = roles.ADMIN in mine
    return {
        "agent": admin or roles.AGENT in mine,
        "marketer": admin or roles.MARKETER in mine,
        "reviewer": admin or roles.REVIEWER in mine,
        "analyst": admin or roles.ANALYST in mine or roles.REVIEWER in mine,
        "admin": admin,
        "names": sorted(mine),
    }


@register.filter
def get_item(mapping, key):
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.filter
def percent(value) -> str:
    return "–" if value is None else f"{100 * value:.0f} %"
