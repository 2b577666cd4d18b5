"""The domain's data. Rows are the truth: a broker message only wakes a worker for a job id."""

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
PRIORITY_MIN, PRIORITY_MAX, PRIORITY_DEFAULT = 0, 9, 5


class Job(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=64)
    queue = models.CharField(max_length=16)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="jobs")
    params = models.JSONField(help_text="Validated parameters of the job's kind.")
    request_hash = models.CharField(max_length=64, help_text="SHA-256 of kind, params and priority.")
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    priority = models.PositiveSmallIntegerField(default=PRIORITY_DEFAULT, help_text="0 (lowest) to 9 (highest).")
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=3)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    progress = models.FloatField(default=0.0)
    progress_message = models.CharField(max_length=255, blank=True)
    worker_id = models.CharField(max_length=255, blank=True)
    model_version = models.CharField(max_length=255, blank=True)
    usage = models.JSONField(default=dict, blank=True, help_text="Token counts and timings.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    first_token_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="job_idempotency_key_unique_per_owner",
            ),
            models.CheckConstraint(condition=Q(progress__gte=0.0, progress__lte=1.0), name="job_progress_fraction"),
            models.CheckConstraint(condition=Q(priority__lte=PRIORITY_MAX), name="job_priority_range"),
            models.CheckConstraint(condition=Q(status__in=JobStatus.values), name="job_status_valid"),
        ]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="job_owner_created"),
            models.Index(fields=["status", "queue"], name="job_status_queue"),
            models.Index(fields=["status", "heartbeat_at"], name="job_status_heartbeat"),
            models.Index(fields=["kind", "status"], name="job_kind_status"),
            models.Index(fields=["-created_at"], name="job_created"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.id} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    def clean(self) -> None:
        if self.status in FINAL_STATUSES and self.finished_at is None:
            raise ValidationError({"finished_at": "A final job needs a finish time."})
        if self.attempts > self.max_attempts:
            raise ValidationError({"attempts": f"At most {self.max_attempts} attempts."})


class FinishReason(models.TextChoices):
    STOP = "stop"  # end-of-sequence token or a stop sequence
    LENGTH = "length"  # max_new_tokens reached
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"


class Candidate(models.Model):
    """One generated output of a job (a job asked for ``n`` of them)."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="candidates")
    index = models.PositiveSmallIntegerField()
    text = models.TextField()
    score = models.FloatField(
        null=True, blank=True, help_text="Higher is better: mean token log-probability (generate), grounding (reply)."
    )
    finish_reason = models.CharField(max_length=16, choices=FinishReason.choices)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job", "index"]
        constraints = [models.UniqueConstraint(fields=["job", "index"], name="candidate_unique_index_per_job")]

    def __str__(self) -> str:
        return f"{self.job_id}#{self.index}"


class JobEvent(models.Model):
    """Text streamed by the running attempt of a job, replayed by the SSE endpoint.

    Only the worker that owns the running attempt writes these, so ids grow in commit order per job.
    """

    id = models.BigAutoField(primary_key=True)
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="events")
    attempt = models.PositiveIntegerField()
    deltas = models.JSONField(help_text='Text appended per candidate: {"0": "Hel", "1": "Th"}.')
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["job", "id"], name="jobevent_job_id")]


class WorkerHeartbeat(models.Model):
    """A Celery worker process that is alive; /readyz needs at least one fresh row."""

    name = models.CharField(max_length=255, unique=True)
    queues = models.CharField(max_length=255, blank=True)
    device = models.CharField(max_length=64, blank=True)
    pid = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField()
    last_seen_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.name


# --- knowledge base -------------------------------------------------------------------------


class KnowledgeItem(models.Model):
    """What knowledge docs and past conversations share: where a row came from (``source`` +
    ``external_id``, unique together, so a re-import updates instead of duplicating) and its
    embedding.

    The embedding is stored as raw little-endian float32 bytes (384 dims for MiniLM: 1,536 bytes,
    against ~8 KB as JSON text): compact, exact, and loaded into the in-process index with one
    ``numpy.frombuffer`` per row instead of parsing JSON; any database backend stores it.
    ``embedded_hash`` is the ``content_hash`` the stored vector was computed from: a row needs a
    new embedding when the two differ or when ``embedding_model`` is not the configured one.
    """

    source = models.CharField(max_length=64, help_text="Where the row came from (an import's --source).")
    external_id = models.CharField(max_length=128, help_text="The row's id in its source, or a hash of its content.")
    language = models.CharField(max_length=16, default="en")
    active = models.BooleanField(default=True, help_text="Inactive rows are not searched.")
    content_hash = models.CharField(max_length=64, help_text="SHA-256 of the text that is embedded.")
    embedding = models.BinaryField(
        null=True, blank=True, editable=False,
        help_text="float32 vectors, normalised, one per embedding_texts() entry, one after another.",
    )
    embedding_model = models.CharField(max_length=128, blank=True)
    embedded_hash = models.CharField(max_length=64, blank=True)
    embedded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    def embedding_text(self) -> str:
        """What the content hash covers (an edit to it makes the row pending again)."""
        raise NotImplementedError

    def embedding_texts(self) -> list[str]:
        """The texts the row is searched by, one vector each, stored one after another in
        ``embedding``; a query's similarity to the row is its best of them."""
        return [self.embedding_text()]


class KnowledgeDoc(KnowledgeItem):
    """A help-centre article or FAQ entry: grounding for replies."""

    title = models.CharField(max_length=500)
    body = models.TextField()
    tags = models.JSONField(default=list, blank=True, help_text="Lower-case strings.")

    class Meta:
        ordering = ["-updated_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="knowledgedoc_unique_external_id"),
        ]
        indexes = [
            models.Index(fields=["active", "embedding_model"], name="knowledgedoc_active_model"),
            models.Index(fields=["source", "active"], name="knowledgedoc_source_active"),
            models.Index(fields=["language"], name="knowledgedoc_language"),
            models.Index(fields=["-updated_at"], name="knowledgedoc_updated"),
        ]

    def __str__(self) -> str:
        return self.title

    def embedding_text(self) -> str:
        return f"{self.title}\n\n{self.body}"

    def embedding_texts(self) -> list[str]:
        # The title alone, and the title with the body. A customer's message is a question like
        # a FAQ title; the whole article dilutes it (MiniLM, 16 hand-written messages for the
        # demo FAQ: the right doc ranked first for 8 by the title, 4 by the title and body) but
        # catches articles whose title says little ("Returns").
        return [self.title, self.embedding_text()]


class Conversation(KnowledgeItem):
    """A past, resolved customer conversation: the customer's message and the agent's reply,
    with personal data masked before storing. Searched by the customer's message."""

    customer_message = models.TextField()
    agent_reply = models.TextField()
    intent = models.CharField(max_length=100, blank=True)
    category = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="conversation_unique_external_id"),
        ]
        indexes = [
            models.Index(fields=["active", "embedding_model"], name="conversation_active_model"),
            models.Index(fields=["source", "active"], name="conversation_source_active"),
            models.Index(fields=["intent"], name="conversation_intent"),
            models.Index(fields=["category"], name="conversation_category"),
        ]

    def __str__(self) -> str:
        return self.customer_message[:80]

    def embedding_text(self) -> str:
        # A new message is compared with past messages: question to question matches better
        # than question to answer with a symmetric model like MiniLM.
        return self.customer_message


# --- trained models -------------------------------------------------------------------------


class ModelFamily(models.TextChoices):
    LM_ADAPTER = "lm_adapter"  # a LoRA adapter on the base language model
    INTENT = "intent"
    SENTIMENT = "sentiment"
    VAE = "vae"
    GAN = "gan"


class ModelVersionStatus(models.TextChoices):
    READY = "ready"
    FAILED = "failed"
    ARCHIVED = "archived"


class ModelVersion(models.Model):
    """A trained artefact (adapter, classifier, VAE, GAN) with the metrics it was evaluated on.

    Training jobs register versions; people promote one per family and purpose to be the default
    that workers use (``is_default``). Workers re-resolve the default on each job, so a promotion
    takes effect without a restart. The files live under ``GENAI_MODEL_STORE_DIR/artifact_path``.
    """

    family = models.CharField(max_length=16, choices=ModelFamily.choices)
    name = models.SlugField(max_length=100, help_text='Requested as "name" (its default or newest) or "name@3".')
    version = models.PositiveIntegerField()
    purpose = models.CharField(max_length=64, blank=True, help_text="The job kind it serves: reply, copy, ...")
    status = models.CharField(max_length=16, choices=ModelVersionStatus.choices, default=ModelVersionStatus.READY)
    is_default = models.BooleanField(default=False, help_text="Promoted: what workers use for the family and purpose.")
    artifact_path = models.CharField(max_length=500, help_text="Relative to GENAI_MODEL_STORE_DIR.")
    base_model = models.CharField(max_length=255, blank=True)
    config = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True, help_text="Validation figures the version was judged on.")
    training_job = models.ForeignKey(
        Job, on_delete=models.SET_NULL, null=True, blank=True, related_name="model_versions"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    promoted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    promoted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["family", "name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="modelversion_unique_name_version"),
            models.UniqueConstraint(
                fields=["family", "purpose"], condition=Q(is_default=True), name="modelversion_one_default"
            ),
            models.CheckConstraint(condition=Q(version__gte=1), name="modelversion_version_positive"),
            models.CheckConstraint(
                condition=~Q(is_default=True) | Q(status="ready"), name="modelversion_default_is_ready"
            ),
        ]
        indexes = [models.Index(fields=["family", "purpose", "status"], name="modelversion_family_purpose")]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"


class JobMetric(models.Model):
    """One logged step of a training job: the points of its loss curves."""

    id = models.BigAutoField(primary_key=True)
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="metric_points")
    step = models.PositiveIntegerField()
    split = models.CharField(max_length=16, default="train", help_text="train | validation | ...")
    values = models.JSONField(help_text='{"loss": 2.31, "kl": 0.4}')
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job", "step", "id"]
        indexes = [models.Index(fields=["job", "step"], name="jobmetric_job_step")]


# --- product copy -----------------------------------------------------------------------------


class BrandExample(models.Model):
    """An example description in a brand's voice (optionally of one collection), stored by a
    marketer: the most similar ones are the ``copy`` runner's few-shot style examples, and all
    of them are fine-tuning rows (``workers.runners.copy.copy_training_examples``).
    ``attributes`` are the product facts the text describes, when known (the few-shot turn then
    shows them). The embedding is stored like ``KnowledgeItem``'s: float32 bytes of the text,
    ``embedded_hash`` the ``content_hash`` it was computed from."""

    brand = models.CharField(max_length=100)
    collection = models.CharField(max_length=100, blank=True, help_text="Blank: the whole brand.")
    text = models.TextField()
    attributes = models.JSONField(default=dict, blank=True, help_text="The product facts the text describes.")
    active = models.BooleanField(default=True, help_text="Inactive examples are neither prompted nor trained on.")
    content_hash = models.CharField(max_length=64, help_text="SHA-256 of brand, collection and text.")
    embedding = models.BinaryField(null=True, blank=True, editable=False, help_text="float32 vector, normalised.")
    embedding_model = models.CharField(max_length=128, blank=True)
    embedded_hash = models.CharField(max_length=64, blank=True)
    embedded_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["brand", "collection", "content_hash"], name="brandexample_unique_text"),
            models.CheckConstraint(condition=~Q(brand=""), name="brandexample_brand_not_blank"),
            models.CheckConstraint(condition=~Q(text=""), name="brandexample_text_not_blank"),
        ]
        indexes = [
            models.Index(fields=["brand", "collection"], name="brandexample_brand_collection"),
            models.Index(fields=["active", "embedding_model"], name="brandexample_active_model"),
        ]

    def __str__(self) -> str:
        return f"{self.brand}/{self.collection or '-'}: {self.text[:60]}"

    def embedding_text(self) -> str:
        return self.text


# --- the company profile ----------------------------------------------------------------------


class CompanyProfile(models.Model):
    """The business's own details, which fill the ``{{Placeholders}}`` that every reply draft
    carries from the knowledge base (``{{Website Name}}``, ``{{Customer Support Phone Number}}``,
    ``{{Live Chat}}``, ...). One row (id 1), edited by reviewers and admins (the admin, the
    ``/company/`` page, ``PATCH /api/company-profile``) through ``company_profile_update``.

    Each field fills the placeholder names in ``PLACEHOLDERS`` (the spellings the shipped Bitext
    answers use, compared case- and separator-insensitively); ``extra`` fills any other name
    (``{"Refund Policy": "https://shop.example/refunds"}``) and wins over a field for the same
    name. A job's own ``context`` wins over both."""

    PLACEHOLDERS: dict[str, tuple[str, ...]] = {
        "company_name": ("Company Name",),
        "website_name": ("Website Name", "Website", "Website/App Name", "Website or App", "Service Website"),
        "website_url": ("Website URL",),
        "support_phone": (
            "Customer Support Phone Number", "Customer Service Phone Number", "Support Phone Number",
            "Customer Assistance Phone Number",
        ),
        "support_email": (
            "Customer Support Email", "Customer Support Email Address", "Customer Service Email",
            "Customer Service Email Address", "Support Email", "Support Email Address",
        ),
        "support_hours": (
            "Customer Support Availability", "Customer Support Hours", "Customer Service Hours",
            "Support Team Availability", "Customer Assistance Hours", "Operating Hours",
        ),
        "live_chat": ("Live Chat",),
        "returns_address": ("Returns Address", "Return Address"),
    }

    company_name = models.CharField(max_length=200, blank=True, help_text="Also signs e-mail replies.")
    website_name = models.CharField(max_length=200, blank=True, help_text='How replies name the site: "our website shop.example".')
    website_url = models.URLField(max_length=500, blank=True)
    support_phone = models.CharField(max_length=64, blank=True, help_text="The customer-support phone number.")
    support_email = models.EmailField(max_length=254, blank=True, help_text="The customer-support e-mail address.")
    support_hours = models.CharField(
        max_length=200, blank=True, help_text='When support answers, as replies say it: "Monday to Friday, 9:00-17:00 CET".'
    )
    live_chat = models.CharField(max_length=500, blank=True, help_text='The live chat, as replies name it: "live chat at https://...".')
    returns_address = models.CharField(max_length=500, blank=True, help_text="Where customers send returns.")
    extra = models.JSONField(
        default=dict, blank=True, help_text='Any other placeholder: {"Refund Policy": "https://shop.example/refunds"}.'
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="companyprofile_single_row")]

    def __str__(self) -> str:
        return self.company_name or "Company profile"

    def clean(self) -> None:
        from generation.jsonchecks import text_problem

        errors: dict[str, list[str]] = {}
        for name in self.PLACEHOLDERS:
            value = getattr(self, name) or ""
            problem = text_problem(value) or ("Braces ({ }) are not allowed: the value fills a placeholder." if
                                              "{" in value or "}" in value else None)
            if problem:
                errors.setdefault(name, []).append(problem)
        extra = self.extra if self.extra is not None else {}
        if not isinstance(extra, dict):
            errors["extra"] = ['A map of placeholder names to values: {"Refund Policy": "..."}.']
        else:
            errors.update(self._extra_errors(extra))
        if errors:
            raise ValidationError(errors)

    @staticmethod
    def _extra_errors(extra: dict) -> dict[str, list[str]]:
        from generation.jsonchecks import printable, text_problem

        limit = settings.GENAI_COMPANY_PROFILE_MAX_EXTRA
        key_chars, value_chars = settings.GENAI_REPLY_MAX_CONTEXT_KEY_CHARS, settings.GENAI_REPLY_MAX_CONTEXT_VALUE_CHARS
        problems = []
        if len(extra) > limit:
            problems.append(f"At most {limit} placeholders (GENAI_COMPANY_PROFILE_MAX_EXTRA).")
        for key, value in extra.items():
            name = printable(str(key))[:80]
            if not isinstance(key, str) or not key.strip() or len(key) > key_chars:
                problems.append(f"Placeholder names must be 1 to {key_chars} characters: {name!r}.")
            elif text_problem(key) or "{" in key or "}" in key:
                problems.append(f"Placeholder name {name!r}: {text_problem(key) or 'braces are not allowed.'}")
            if not isinstance(value, str) or not value.strip() or len(value) > value_chars:
                problems.append(f"The value of {name!r} must be text of 1 to {value_chars} characters.")
            elif text_problem(value) or "{" in value or "}" in value:
                problems.append(f"The value of {name!r}: {text_problem(value) or 'braces are not allowed.'}")
        return {"extra": problems} if problems else {}

    def placeholder_values(self) -> dict[str, str]:
        """``{placeholder name: value}`` for every field set (under each of its names), then
        ``extra``, which wins for a name both give."""
        values = {
            placeholder: value.strip()
            for name, placeholders in self.PLACEHOLDERS.items()
            if (value := getattr(self, name) or "").strip()
            for placeholder in placeholders
        }
        values.update({key.strip(): value.strip() for key, value in (self.extra or {}).items() if str(value).strip()})
        return values
