import os

from django.core.wsgi import get_wsgi_application

# Production unless told otherwise: a server started without DJANGO_SETTINGS_MODULE must not run
# with DEBUG on (make run and the tests set local / test).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "genai_site.settings.production")
application = get_wsgi_application()
