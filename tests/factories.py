import datetime as dt

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from incidents.models import Incident
from tracker.models import ActionItem, Person


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("correct horse battery staple")


class PersonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Person

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    name = factory.Sequence(lambda n: f"Person {n}")


class IncidentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Incident

    external_id = factory.Sequence(lambda n: f"INC-TEST-{n:04d}")
    title = factory.Sequence(lambda n: f"Incident {n}")
    severity = "SEV2"
    status = "resolved"
    declared_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=3))
    service = "payments"


class ActionItemFactory(factory.django.DjangoModelFactory):
    """Builds items directly; tests of the services call the services instead."""

    class Meta:
        model = ActionItem

    incident = factory.SubFactory(IncidentFactory)
    title = factory.Sequence(lambda n: f"Follow-up {n}")
    owner = factory.SubFactory(PersonFactory)
    priority = "P2"
    type = "prevention"
    status = "open"
    deadline = factory.LazyFunction(lambda: timezone.localdate() + dt.timedelta(days=14))
