"""The gifts app's system checks (manage.py check, and at every start)."""

from django.core.checks import Warning as CheckWarning

from gifts import certificates


def certificates_can_render(app_configs, **kwargs):
    """Certificates need the system's Pango (WeasyPrint); without it the rest works and this says what to install."""
    if not certificates.MISSING:
        return []
    return [
        CheckWarning(
            f"{certificates.MISSING}: gift certificates cannot be made.",
            hint="Install Pango (Debian: apt-get install libpango-1.0-0).",
            id="gifts.W001",
        )
    ]
