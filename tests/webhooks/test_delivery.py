"""How deliveries are retried."""

from app.webhooks.delivery import retry_delay


def test_retries_back_off_exponentially_with_jitter_up_to_the_cap() -> None:
    for failures, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (8, 128.0), (20, 600.0), (500, 600.0)]:
        delays = [retry_delay(failures, base=1.0, cap=600.0) for _ in range(50)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len(set(delays)) > 1
