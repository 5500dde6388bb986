"""The anymail tracking signal's receiver, connected by EmailsConfig.ready(). anymail's views under
/anymail/<esp>/tracking/ check the HTTP Basic secret and the ESP's own signature before any event reaches it."""

from anymail.signals import tracking
from django.dispatch import receiver

from emails import services


@receiver(tracking, dispatch_uid="emails.receivers.tracking_received")
def tracking_received(sender, event, esp_name, **kwargs):
    """Delivered, opened, clicked and complained are timed on the email (the first report of each); bounces and
    refusals move it to `bounced` (or `failed`)."""
    email_key = (event.metadata or {}).get("email_key")
    if event.event_type in services.TRACKED_FIELD_FOR_EVENT:
        services.email_tracked(
            message_id=event.message_id, email_key=email_key, event_type=event.event_type, when=event.timestamp
        )
    if event.event_type not in services.STATUS_FOR_EVENT:
        return
    services.email_bounced(
        message_id=event.message_id,
        email_key=email_key,
        recipient=event.recipient or "",
        event_type=event.event_type,
        description=event.description or event.mta_response or "",
    )
