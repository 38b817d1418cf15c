"""Settings of send-push: Web Push (VAPID) and Firebase Cloud Messaging."""

from __future__ import annotations

from jobkeeper.environment import boolean, choice, http_url, key_text_or_file, section, setting, text

PUSH_TRANSPORTS = ("webpush", "fcm")


@section
class PushSettings:
    push_transport: str | None = setting("JOBKEEPER_PUSH_TRANSPORT", choice(PUSH_TRANSPORTS), default=None)
    """send-push: `webpush` (VAPID) or `fcm` (Firebase Cloud Messaging HTTP v1); unset, the configured one."""
    vapid_private_key: str | None = setting(
        "JOBKEEPER_VAPID_PRIVATE_KEY", key_text_or_file, default=None, secret=True
    )
    """P-256 key: PEM text, a PEM file's path, or base64url (raw 32 bytes or DER); never printed."""
    vapid_subject: str | None = setting("JOBKEEPER_VAPID_SUBJECT", text, default=None)
    """Contact of the sender, `mailto:ops@example.com` or an https URL."""
    webpush_allow_http: bool = setting("JOBKEEPER_WEBPUSH_ALLOW_HTTP", boolean, default=False)
    """Accept `http://` push endpoints (local push servers in development); browsers only give https."""
    fcm_project_id: str | None = setting("JOBKEEPER_FCM_PROJECT_ID", text, default=None)
    """Default: the `project_id` of the service-account key."""
    fcm_credentials: str | None = setting(
        "JOBKEEPER_FCM_CREDENTIALS", key_text_or_file, default=None, secret=True
    )
    """Service-account key: the JSON file's path, or its JSON text; never printed."""
    fcm_api_base: str = setting("JOBKEEPER_FCM_API_BASE", http_url, default="https://fcm.googleapis.com")
    fcm_token_url: str | None = setting("JOBKEEPER_FCM_TOKEN_URL", http_url, default=None)
    """OAuth2 token endpoint; default: the key's `token_uri` (https://oauth2.googleapis.com/token)."""
