from django.core.management.base import BaseCommand, CommandError

from generation import roles
from generation.exceptions import InvalidInput
from generation.services.users import token_issue, user_create


class Command(BaseCommand):
    help = "Create a user with a role and print their API token."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=roles.ROLES)
        parser.add_argument("--email", default="")
        parser.add_argument("--password", default=None, help="For the web pages and admin; API users need none.")

    def handle(self, *args, username, role, email, password, **options):
        try:
            user = user_create(username=username, role=role, email=email, password=password)
        except InvalidInput as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.errors.items())) from exc
        self.stdout.write(token_issue(user=user))
