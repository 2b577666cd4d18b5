from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from generation import roles
from generation.services.users import token_issue, user_create


class Command(BaseCommand):
    help = "Create one demo user per role (password = username + '-demo') and print their API tokens."

    def handle(self, *args, **options):
        User = get_user_model()
        self.stdout.write("Demo users (password: <name>-demo), API tokens:")
        for role in roles.ROLES:
            username = f"demo-{role}"
            user = User.objects.filter(username=username).first() or user_create(
                username=username, role=role, password=f"{username}-demo"
            )
            self.stdout.write(f"  {role:<9} {username:<14} {token_issue(user=user)}")
