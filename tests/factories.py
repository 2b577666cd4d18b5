import factory
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from generation.models import Candidate, Job, JobStatus, ModelVersion
from generation.services.users import role_group


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", "pw-secret-123")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if create and extracted:
            self.groups.add(role_group(role=extracted))
        self.save()


class TokenFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Token

    user = factory.SubFactory(UserFactory)


class JobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Job

    kind = "echo"
    queue = "cpu"
    status = JobStatus.QUEUED
    owner = factory.SubFactory(UserFactory, role="admin")
    params = factory.LazyFunction(lambda: {"text": "hi", "delay_seconds": 0.0})
    request_hash = factory.Sequence(lambda n: f"{n:064d}")


class CandidateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Candidate

    job = factory.SubFactory(JobFactory, status=JobStatus.SUCCEEDED)
    index = factory.Sequence(lambda n: n)
    text = "hello"
    finish_reason = "stop"


class ModelVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelVersion

    family = "lm_adapter"
    name = factory.Sequence(lambda n: f"model-{n}")
    version = 1
    purpose = "reply"
    artifact_path = factory.LazyAttribute(lambda o: f"{o.family}/{o.name}/v{o.version}")
    metrics = factory.LazyFunction(lambda: {"val_loss": 1.0})
