#!/usr/bin/env python
import os
import sys


def main() -> None:
    # The developer's tool: local settings unless told otherwise (the image sets production).
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "genai_site.settings.local")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
