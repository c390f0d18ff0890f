"""factory_boy factories for the core domain and the Salesforce integration."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from autorespond.models import BusinessMembership, Inquiry, Source


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery")

    @factory.post_generation
    def _save(obj, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            obj.save()


class SourceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Source

    slug = factory.Sequence(lambda n: f"source-{n}")
    name = factory.Sequence(lambda n: f"Source {n}")
    parent = None


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BusinessMembership

    user = factory.SubFactory(UserFactory)
    business = factory.SubFactory(SourceFactory)


class InquiryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Inquiry

    source = factory.SubFactory(SourceFactory)
    external_id = factory.Sequence(lambda n: f"inq-{n}")
    first_name = "Ann"
    last_name = factory.Sequence(lambda n: f"Lee{n}")
    email = factory.Sequence(lambda n: f"ann{n}@example.com")
