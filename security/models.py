"""The audit log and the hashed backup-code device.

``AuditEntry`` is append-only: each entry carries the SHA-256 of its own
canonical form and of the entry before it, so rewriting or removing an entry
breaks the chain (``verify_audit_chain``), and on PostgreSQL the database
refuses UPDATE and DELETE outright (migration 0002). Appends go through
``security.audit.audit_record`` only.

``BackupCodeDevice`` is a django-otp device whose one-time codes are stored
as salted SHA-256 digests, never in the clear (django-otp's own static
device keeps them readable).
"""

import hashlib
import hmac
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models
from django.utils import timezone
from django_otp.models import Device, ThrottlingMixin
from simple_history import register

# Codes are 16 characters of a 32-letter alphabet (80 bits): too many to
# guess online and to brute-force offline from a leaked digest, which is why
# one salted SHA-256 is enough and a slow password hash is not needed.
BACKUP_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
BACKUP_CODE_LENGTH = 16


class AuditEntry(models.Model):
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # PROTECT, not SET_NULL: the log is never updated, so a user with audit
    # entries is deactivated rather than deleted.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    # The username as it was: survives renames.
    actor_username = models.CharField(max_length=150, blank=True, default="")
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=100, blank=True, default="")
    target_id = models.CharField(max_length=64, blank=True, default="")
    target_repr = models.CharField(max_length=200, blank=True, default="")
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True, default="")
    # Text, not inet: PostgreSQL would rewrite IPv6 spellings and break the hash.
    ip = models.CharField(max_length=45, blank=True, default="")
    request_id = models.CharField(max_length=64, blank=True, default="")
    # Unique: two appends that read the same head would fork the chain; the
    # advisory lock prevents it and this makes the database refuse it too.
    previous_hash = models.CharField(max_length=64, unique=True)
    entry_hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "audit entries"
        permissions = [
            ("manage_roles", "Can change the roles of staff users"),
            ("reset_mfa", "Can reset another user's MFA devices"),
            ("view_access_review", "Can view the access review"),
        ]

    def __str__(self):
        return f"#{self.pk} {self.action} by {self.actor_username or 'system'}"


class BackupCodeDevice(ThrottlingMixin, Device):
    """A set of one-time recovery codes; each verifies once."""

    class Meta:
        verbose_name = "backup code set"

    def get_throttle_factor(self):
        return 1

    def remaining(self) -> int:
        return self.codes.filter(used_at__isnull=True).count()

    def replace_codes(self, count: int) -> list[str]:
        """Drop the old codes, store ``count`` new digests, return the plain codes.

        The plain codes exist only in the return value: show them once.
        """
        self.codes.all().delete()
        plain = [
            "".join(
                secrets.choice(BACKUP_CODE_ALPHABET) for _ in range(BACKUP_CODE_LENGTH)
            )
            for _ in range(count)
        ]
        BackupCode.objects.bulk_create(
            BackupCode(device=self, digest=BackupCode.digest_of(code)) for code in plain
        )
        return [format_backup_code(code) for code in plain]

    def verify_token(self, token) -> bool:
        """Accept an unused code once.

        django-otp loads the device with SELECT ... FOR UPDATE when it
        verifies, so concurrent attempts on one user queue; the conditional
        UPDATE that marks the code used is the second guard.
        """
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        code = normalise_backup_code(token)
        if len(code) == BACKUP_CODE_LENGTH:
            for stored in self.codes.filter(used_at__isnull=True):
                if stored.matches(code):
                    claimed = BackupCode.objects.filter(
                        pk=stored.pk, used_at__isnull=True
                    ).update(used_at=timezone.now())
                    if claimed:
                        self.throttle_reset()
                        return True
        self.throttle_increment()
        return False


class BackupCode(models.Model):
    device = models.ForeignKey(
        BackupCodeDevice, on_delete=models.CASCADE, related_name="codes"
    )
    # "<salt>$<sha256 hex of salt + code>"
    digest = models.CharField(max_length=120)
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"backup code {self.pk} ({'used' if self.used_at else 'unused'})"

    @staticmethod
    def digest_of(code: str, salt: str | None = None) -> str:
        salt = salt or secrets.token_hex(16)
        digest = hashlib.sha256((salt + code).encode()).hexdigest()
        return f"{salt}${digest}"

    def matches(self, code: str) -> bool:
        salt, _ = self.digest.split("$", 1)
        return hmac.compare_digest(self.digest, self.digest_of(code, salt))


def normalise_backup_code(token) -> str:
    return "".join(str(token).lower().split()).replace("-", "")


def format_backup_code(code: str) -> str:
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


# Staff accounts are changed by Security admins: keep their history too (the
# password hash stays out of the history table).
register(get_user_model(), app="security", excluded_fields=["password"])
