"""``augment``: a labelled CSV (a file under GENAI_GENMODEL_DATA_DIRS, uploaded CSV text, or
inline rows) -> ``per_class`` synthetic examples per class, decoded from that class's region of
the sentence VAE's latent space and ranked by the GAN critic (``workers.runners.genmodels.
augment_examples``, which the sentiment and intent training jobs also call). Each candidate's
metadata holds its ``label``."""

from pathlib import Path

from django.conf import settings
from rest_framework import serializers

from generation import roles
from generation.kinds import JobKind, kind_register
from generation.kinds.variants import domain_field, genmodel_check
from generation.text.tables import CsvError, csv_read


def data_path_check(value: str) -> str:
    """A CSV path on the workers, under GENAI_GENMODEL_DATA_DIRS (shared with genmodel_train)."""
    value = value.strip()
    if not value:
        return ""
    path = Path(value).expanduser().resolve()
    roots = [Path(root).expanduser().resolve() for root in settings.GENAI_GENMODEL_DATA_DIRS]
    if not any(path.is_relative_to(root) for root in roots):
        raise serializers.ValidationError("The file must lie under GENAI_GENMODEL_DATA_DIRS.")
    if path.suffix.lower() != ".csv" or not path.is_file():
        raise serializers.ValidationError(f"No CSV file at {value!r}.")
    return str(path)


def csv_content_check(value: str, *, columns: list[str]) -> str:
    """Inline CSV text: a header row naming ``columns`` and at least one data row."""
    try:
        table = csv_read(content=value, columns=columns, max_rows=1)
    except CsvError as exc:
        raise serializers.ValidationError(str(exc)) from None
    if not table.rows:
        raise serializers.ValidationError("The CSV has a header but no rows.")
    return value


class AugmentRowSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=settings.GENAI_GENMODEL_MAX_TEXT_CHARS)
    label = serializers.CharField(max_length=100)


class AugmentParamsSerializer(serializers.Serializer):
    csv = serializers.CharField(
        max_length=1000, required=False, allow_blank=True, default="",
        help_text="A labelled CSV on the workers, under GENAI_GENMODEL_DATA_DIRS.",
    )
    csv_content = serializers.CharField(
        max_length=settings.GENAI_GENMODEL_MAX_CSV_CHARS, required=False, allow_blank=True, default="", trim_whitespace=False,
        help_text="An uploaded CSV's text (header row first). Give one of csv, csv_content or rows.",
    )
    rows = AugmentRowSerializer(many=True, required=False, default=list, max_length=settings.GENAI_GENMODEL_MAX_TEXTS)
    text_col = serializers.CharField(max_length=100, default="text")
    label_col = serializers.CharField(max_length=100, default="label")
    per_class = serializers.IntegerField(min_value=1, max_value=settings.GENAI_GENMODEL_AUGMENT_MAX_PER_CLASS, default=20)
    seed = serializers.IntegerField(min_value=0, max_value=2**31 - 1, default=0)
    domain = domain_field()

    def validate_csv(self, value: str) -> str:
        return data_path_check(value)

    def validate(self, attrs: dict) -> dict:
        given = [k for k in ("csv", "csv_content", "rows") if attrs.get(k)]
        if len(given) != 1:
            raise serializers.ValidationError(
                {"csv": [f"Give exactly one of csv, csv_content or rows (got {', '.join(given) or 'none'})."]}
            )
        if attrs.get("csv_content"):
            try:
                csv_content_check(attrs["csv_content"], columns=[attrs["text_col"], attrs["label_col"]])
            except serializers.ValidationError as exc:
                raise serializers.ValidationError({"csv_content": exc.detail}) from None
        try:
            genmodel_check("", domain=attrs["domain"])
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"model": exc.detail}) from None
        return attrs


kind_register(
    JobKind(
        name="augment",
        description="Synthetic labelled examples per class from the sentence VAE/GAN, to enlarge scarce classes.",
        params_serializer=AugmentParamsSerializer,
        queue="gpu",
        masked_params=("rows[].text", "csv_content"),
        roles=frozenset({roles.ANALYST, roles.MARKETER, roles.REVIEWER, roles.ADMIN}),
    )
)
