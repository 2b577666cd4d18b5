from datetime import timedelta

import django_filters
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField

from generation.kinds import kinds_all
from generation.models import Job, JobStatus


class BoundedIsoDateTimeField(IsoDateTimeField):
    """ISO 8601 with offsets a database accepts (within ±14:00) and years 1900 to 9999."""

    def to_python(self, value):
        parsed = super().to_python(value)
        if parsed is None:
            return parsed
        offset = parsed.utcoffset()
        if offset is not None and abs(offset) > timedelta(hours=14):
            raise ValidationError("Time zone offset must be within ±14:00.", code="invalid")
        if not 1900 <= parsed.year <= 9999:
            raise ValidationError("Year must be between 1900 and 9999.", code="invalid")
        return parsed


class BoundedIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = BoundedIsoDateTimeField


class JobFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=lambda: [(k.name, k.name) for k in kinds_all()])
    status = django_filters.ChoiceFilter(choices=JobStatus.choices)
    created_after = BoundedIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = BoundedIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Job
        fields = ["kind", "status", "created_after", "created_before"]
