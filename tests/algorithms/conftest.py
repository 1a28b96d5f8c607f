import pytest


@pytest.fixture
def record_s_step(monkeypatch):
    """patch("module.SStep") replaces that SStep class by a fake whose updates train nothing and are
    recorded as (obs, pose) in the list patch returns."""
    def patch(target: str) -> list:
        calls = []

        class RecordingSStep:
            def __init__(self, policy, config):
                self.config = config

            def update(self, obs, target_mu, precision, pose=None):
                calls.append((obs, pose))
                return 0.0

        monkeypatch.setattr(target, RecordingSStep)
        return calls

    return patch
