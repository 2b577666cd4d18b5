"""``variants``: a text -> k rewrites sampled around its posterior in the sentence VAE's latent
space, ranked by the GAN critic's realism and by novelty (1 - BLEU against the text), with an
optional list of must-keep words (a candidate that drops one is removed). The domain's model
writes them (``product`` by default); a candidate the copy checker flags (when the job gives the
product's ``attributes``) or whose perplexity under the base LM is above
GENAI_GENMODEL_VARIANT_MAX_PERPLEXITY is dropped, not ranked.

Shared by the other VAE/GAN kinds (interpolate, sample, augment): the ``model`` field and
``genmodel_check``, which checks a model name against the ModelVersion rows at job creation, so
an unknown name (or no trained model at all) is a 400 naming the field, not a failed job; and
``genmodel_versions_resolve``, the one rule of which VAE and GAN a request gets (workers use it too).
"""

from django.conf import settings
from rest_framework import serializers

from generation import roles
from generation.kinds import JobKind, kind_register
from generation.kinds.copy import AttributesField

DECODINGS = ("greedy", "sample", "beam")
GENMODEL_ROLES = frozenset({roles.MARKETER, roles.AGENT, roles.ADMIN})
# One model per domain: a domain's VAE is the promoted, else newest, VAE of its purpose.
DOMAINS = ("product", "support")
SUPPORT_PURPOSE = "reply"


def domain_purpose(domain: str) -> str:
    """The ModelVersion purpose of a domain's VAE: product copy is GENAI_GENMODEL_PURPOSE (copy),
    support replies are ``reply``."""
    if domain not in DOMAINS:
        raise ValueError(f"Unknown domain {domain!r}: {', '.join(DOMAINS)}")
    return settings.GENAI_GENMODEL_PURPOSE if domain == "product" else SUPPORT_PURPOSE


def genmodel_versions_resolve(name: str | None = None, *, gan_name: str | None = None, domain: str | None = None):
    """(VAE ModelVersion, its GAN ModelVersion or None) for a request's model name, or (None, None).

    A name: ``"name@3"`` exactly, ``"name"`` its promoted else newest ready version. No name and a
    ``domain``: the promoted, else newest, VAE of that domain's purpose (never another domain's).
    Neither: the promoted VAE of GENAI_GENMODEL_PURPOSE, else the newest ready VAE. The GAN is
    ``gan_name`` (resolved the same way; None unless it was trained on that VAE) when given, else
    the promoted, else the newest ready one trained on that VAE (its config names it)."""
    from generation.models import ModelFamily, ModelVersion, ModelVersionStatus
    from generation.selectors import model_version_resolve

    if name:
        vae = model_version_resolve(family=ModelFamily.VAE, name=name)
    elif domain:
        vae = model_version_resolve(family=ModelFamily.VAE, purpose=domain_purpose(domain))
    else:
        vae = model_version_resolve(family=ModelFamily.VAE, purpose=settings.GENAI_GENMODEL_PURPOSE)
        if vae is None:
            vae = (
                ModelVersion.objects.filter(family=ModelFamily.VAE, status=ModelVersionStatus.READY)
                .order_by("-is_default", "-created_at", "-id")
                .first()
            )
    if vae is None:
        return None, None
    if gan_name:
        gan = model_version_resolve(family=ModelFamily.GAN, name=gan_name)
        return vae, gan if gan is not None and gan.config.get("vae") == vae.label else None
    gan = (
        ModelVersion.objects.filter(family=ModelFamily.GAN, status=ModelVersionStatus.READY, config__vae=vae.label)
        .order_by("-is_default", "-created_at", "-id")
        .first()
    )
    return vae, gan


def model_field() -> serializers.CharField:
    return serializers.CharField(
        max_length=120,
        required=False,
        allow_blank=True,
        default="",
        help_text='A VAE model version: "name" (its promoted, else newest version) or "name@3"; blank: the '
        "promoted VAE of GENAI_GENMODEL_PURPOSE, else the newest.",
    )


def domain_field(default: str = "product") -> serializers.ChoiceField:
    return serializers.ChoiceField(
        choices=DOMAINS, default=default,
        help_text="Whose model, when no model is named: product (trained on product copy) or support (support replies).",
    )


def genmodel_check(name: str, *, need_gan: bool = False, domain: str | None = None) -> str:
    """``name`` stripped, when a ready VAE (and with ``need_gan`` its GAN) answers to it (or, with
    no name, to ``domain``); else a ValidationError saying what exists or what to do."""
    name = (name or "").strip()
    vae, gan = genmodel_versions_resolve(name or None, domain=domain)
    if vae is None and not name and domain:
        raise serializers.ValidationError(
            f"No VAE model of the {domain} domain is trained yet; run a genmodel_train job with "
            f'"domain": "{domain}" first.'
        )
    if vae is None:
        if name:
            from generation.models import ModelFamily, ModelVersion, ModelVersionStatus

            known = sorted(
                set(
                    ModelVersion.objects.filter(family=ModelFamily.VAE, status=ModelVersionStatus.READY).values_list(
                        "name", flat=True
                    )[:20]
                )
            )
            raise serializers.ValidationError(
                f"Unknown VAE model {name!r}; ready VAE models: {', '.join(known) or 'none (train one with genmodel_train)'}."
            )
        raise serializers.ValidationError("No VAE model is trained yet; run a genmodel_train job first.")
    if need_gan and gan is None:
        raise serializers.ValidationError(f"{vae.label} has no GAN; use source=prior or train a new model.")
    return name


def text_field(help_text: str, **kwargs) -> serializers.CharField:
    return serializers.CharField(
        max_length=settings.GENAI_GENMODEL_MAX_TEXT_CHARS, trim_whitespace=True, help_text=help_text, **kwargs
    )


class VariantsParamsSerializer(serializers.Serializer):
    text = text_field("The text to rewrite (one sentence works best: the VAE models sentences).")
    k = serializers.IntegerField(
        min_value=1, max_value=settings.GENAI_GENMODEL_MAX_VARIANTS, default=5, help_text="Variants to return."
    )
    must_keep = serializers.ListField(
        child=serializers.CharField(max_length=64, trim_whitespace=True),
        required=False,
        default=list,
        max_length=settings.GENAI_GENMODEL_MAX_MUST_KEEP,
        help_text="Words (or phrases) every variant must contain, case-insensitively; variants that drop one are removed.",
    )
    spread = serializers.FloatField(
        min_value=0.1, max_value=5.0, default=1.0, help_text="How far from the text's posterior to sample, in posterior standard deviations."
    )
    decoding = serializers.ChoiceField(choices=DECODINGS, default="greedy")
    temperature = serializers.FloatField(min_value=0.05, max_value=2.0, default=0.8, help_text="For decoding=sample.")
    seed = serializers.IntegerField(min_value=0, max_value=2**31 - 1, required=False, allow_null=True, default=None)
    attributes = AttributesField(
        required=False, default=dict,
        help_text="The product's attributes (as for the copy kind): variants the copy checker finds an unsupported "
        "claim in are dropped.",
    )
    domain = domain_field()
    model = model_field()

    def validate(self, attrs: dict) -> dict:
        from generation.privacy import pii_mask

        try:
            attrs["model"] = genmodel_check(attrs.get("model", ""), domain=attrs["domain"])
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"model": exc.detail}) from None
        attrs["text"] = pii_mask(attrs["text"]).text
        words = [w for w in attrs.get("must_keep") or [] if w]
        missing = [w for w in words if w.lower() not in attrs["text"].lower()]
        if missing:
            raise serializers.ValidationError(
                {"must_keep": [f"Not in the text: {', '.join(map(repr, missing))}; must-keep words come from the text."]}
            )
        attrs["must_keep"] = words
        return attrs


kind_register(
    JobKind(
        name="variants",
        description="Rewrites of a text sampled around it in the sentence VAE's latent space (the product model by "
        "default); those that drop a must-keep word, fail the copy checker or are not fluent are dropped; the rest "
        "ranked by realism and novelty.",
        params_serializer=VariantsParamsSerializer,
        queue="gpu",
        masked_params=("text",),
        roles=GENMODEL_ROLES,
    )
)
