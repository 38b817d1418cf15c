"""Settings of analytics-track: Segment or Mixpanel, and how events are batched."""

from __future__ import annotations

from jobkeeper.environment import choice, http_url, seconds, section, setting, text, whole

ANALYTICS_PROVIDERS = ("segment", "mixpanel")


@section
class AnalyticsSettings:
    analytics_provider: str | None = setting(
        "JOBKEEPER_ANALYTICS_PROVIDER", choice(ANALYTICS_PROVIDERS), default=None
    )
    """analytics-track: `segment` or `mixpanel`; unset, the configured one."""
    segment_write_key: str | None = setting("JOBKEEPER_SEGMENT_WRITE_KEY", text, default=None, secret=True)
    segment_api_base: str = setting("JOBKEEPER_SEGMENT_API_BASE", http_url, default="https://api.segment.io")
    mixpanel_token: str | None = setting("JOBKEEPER_MIXPANEL_TOKEN", text, default=None)
    """Project token: events go to /track."""
    mixpanel_api_secret: str | None = setting(
        "JOBKEEPER_MIXPANEL_API_SECRET", text, default=None, secret=True
    )
    """Project API secret: events go to /import (authenticated, any age, deduplicated by $insert_id)."""
    mixpanel_api_base: str = setting(
        "JOBKEEPER_MIXPANEL_API_BASE", http_url, default="https://api.mixpanel.com"
    )
    analytics_batch_size: int = setting("JOBKEEPER_ANALYTICS_BATCH_SIZE", whole(1), default=100)
    """Most events sent in one request."""
    analytics_batch_wait: float = setting("JOBKEEPER_ANALYTICS_BATCH_WAIT", seconds, default=0.05)
    """Seconds a batch stays open for more events after its first one."""
