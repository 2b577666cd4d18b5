from django.conf import settings
from django.core.management.base import BaseCommand

from workers.runtime.models import lm_prepare


class Command(BaseCommand):
    help = "Prepare the configured language model (convert a GGUF once to cached safetensors)."

    def handle(self, *args, **options):
        path = lm_prepare(settings.GENAI_LM_MODEL)
        self.stdout.write(f"{settings.GENAI_LM_MODEL}: ready in {path}")
