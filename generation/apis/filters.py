import django_filters

from generation.kinds import kinds_all
from generation.models import Job, JobStatus


class JobFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=lambda: [(k.name, k.name) for k in kinds_all()])
    status = django_filters.ChoiceFilter(choices=JobStatus.choices)
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Job
        fields = ["kind", "status", "created_after", "created_before"]
