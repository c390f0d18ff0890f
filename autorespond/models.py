"""The core domain: sources (businesses and their locations), their owners, inquiries, API keys."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

SLUG_VALIDATOR = RegexValidator(
    # \Z, not $: "$" also matches before a final newline, which would let "slug\n" through.
    r"^[a-z0-9]+(?:-[a-z0-9]+)*\Z",
    "Use lowercase letters, digits and single hyphens (for example 'joes-plumbing-east').",
)


class Source(models.Model):
    """A business (no parent) or a location (a child of a business; the tree may be deeper)."""

    slug = models.CharField(max_length=64, unique=True, validators=[SLUG_VALIDATOR])
    name = models.CharField(max_length=200)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    # Phone numbers without a country code are read as numbers of this region (ISO 3166 alpha-2).
    phone_region = models.CharField(max_length=2, default="US")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_business(self) -> bool:
        return self.parent_id is None

    def ancestors(self) -> list[Source]:
        """Parents from the nearest up to the business at the top."""
        chain: list[Source] = []
        node = self.parent
        while node is not None:
            chain.append(node)
            node = node.parent
        return chain

    def business(self) -> Source:
        """The business at the top of this source's tree."""
        ancestors = self.ancestors()
        return ancestors[-1] if ancestors else self


class BusinessMembership(models.Model):
    """A user who owns (manages) a business: they see and change it and all its locations."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="business_memberships"
    )
    business = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="memberships")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "business"], name="unique_business_member")
        ]

    def __str__(self) -> str:
        return f"{self.user} owns {self.business}"


class Inquiry(models.Model):
    """One inquiry Auto-Respond handled, as it handed it to us through the ingestion API."""

    # No index of its own: the unique constraint on (source, external_id) starts with the source,
    # so it serves every look-up by source, and a second index cost every intake's INSERT.
    source = models.ForeignKey(
        Source, on_delete=models.PROTECT, related_name="inquiries", db_index=False
    )
    external_id = models.CharField("id in Auto-Respond", max_length=64)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    company = models.CharField(max_length=255, blank=True)
    email = models.EmailField(max_length=254, blank=True)
    phone = models.CharField(max_length=40, blank=True)
    street = models.CharField(max_length=255, blank=True)
    city = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=100, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    # A name or an ISO 3166 code, as Auto-Respond sent it (autorespond.validators.country_code).
    country = models.CharField(max_length=100, blank=True)
    job_description = models.TextField(blank=True, max_length=32000)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Set by every write that created ("c…") or changed ("u…") the row to a random token of that
    # write, so the single upsert statement of `inquiry_upsert` tells its caller, from the row it
    # returns, whether it inserted, changed or left the inquiry as it was (see services.py).
    write_token = models.CharField(max_length=40, blank=True, default="", editable=False)

    class Meta:
        verbose_name_plural = "inquiries"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "external_id"], name="unique_inquiry_per_source"
            )
        ]

    def __str__(self) -> str:
        return f"{self.source.slug}/{self.external_id}"

    @property
    def has_contact_info(self) -> bool:
        """Contact info is captured once a phone number or an email is present."""
        return bool(self.email.strip() or self.phone.strip())


class ApiKey(models.Model):
    """A key Auto-Respond uses to call the ingestion API. Only a SHA-256 hash is stored."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, help_text="The first characters, to recognise a key.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
