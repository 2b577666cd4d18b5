"""Pages for people. The job pages of each kind grow here; the admin serves staff."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from generation import roles, selectors
from generation.kinds import kinds_all


@login_required
def home(request: HttpRequest) -> HttpResponse:
    mine = roles.user_roles(request.user)
    return render(
        request,
        "generation/home.html",
        {
            "rows": [(job, _preview(job, request.user)) for job in selectors.job_list(user=request.user)[:20]],
            "kinds": [k for k in kinds_all() if mine & k.roles],
            "roles": sorted(mine),
        },
    )


def _preview(job, user) -> str:
    """The first candidate's text, unless the safety filter withheld it from this user."""
    first = next(iter(job.candidates.all()), None)
    if first is None:
        return ""
    return "(withheld by the safety filter)" if selectors.candidate_withheld(first, user) else first.text
