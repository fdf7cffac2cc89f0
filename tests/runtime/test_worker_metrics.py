"""`/metrics` of several workers: one exposition, each family once, every sample labelled."""

from __future__ import annotations

from runtime.metrics import Metrics
from runtime.worker_metrics import labelled, merge


def test_samples_are_labelled_with_their_worker() -> None:
    assert labelled('gatepost_requests_total{vk="a"} 3', 1) == 'gatepost_requests_total{worker="1",vk="a"} 3'
    assert labelled("gatepost_up 1", 0) == 'gatepost_up{worker="0"} 1'
    assert labelled("gatepost_x{} 2", 2) == 'gatepost_x{worker="2"} 2'


def test_each_family_is_declared_once_with_every_workers_samples_together() -> None:
    first, second = Metrics(), Metrics()
    first.requests.inc("vk-a", "gpt-4o", "openai", "200")
    second.requests.inc("vk-b", "gpt-4o", "openai", "200", amount=2)
    second.set_revision("sha256:b")
    text = merge([(0, first.render()), (1, second.render())]).decode()
    lines = text.splitlines()
    assert lines.count("# TYPE gatepost_requests_total counter") == 1
    start = lines.index("# TYPE gatepost_requests_total counter")
    assert lines[start + 1:start + 3] == [
        'gatepost_requests_total{worker="0",vk="vk-a",model="gpt-4o",provider="openai",status="200"} 1',
        'gatepost_requests_total{worker="1",vk="vk-b",model="gpt-4o",provider="openai",status="200"} 2',
    ]
    assert 'gatepost_policy_revision_info{worker="1",revision="sha256:b"} 1' in lines
