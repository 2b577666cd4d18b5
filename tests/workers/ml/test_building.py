"""Model builds in one process are serialised: transformers' loading patches torch.nn.Module for
every thread, so a module built beside it got meta parameters (the product VAE's training failed
on a fresh make run while the mpnet sentiment training loaded)."""

import threading
import time

from workers.ml.building import MODEL_BUILD_LOCK, model_building


def test_a_build_waits_for_another_thread_s_build():
    order = []

    @model_building
    def build(name: str) -> None:
        order.append(f"{name} start")
        time.sleep(0.2)
        order.append(f"{name} end")

    threads = [threading.Thread(target=build, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
        time.sleep(0.05)
    for thread in threads:
        thread.join()
    assert order == ["a start", "a end", "b start", "b end"]
    with MODEL_BUILD_LOCK:  # re-entrant: a loader may call another
        build("c")


def test_every_loader_and_builder_holds_the_lock():
    from workers.runtime.adapters import adapter_merged_model
    from workers.runtime.models import lm_load
    from workers.train.finetune import lora_wrap
    from workers.train.optimus import optimus_build, optimus_checkpoint_load
    from workers.train.sentiment import artifact_load, classifier_from_base

    for loader in (adapter_merged_model, lm_load, lora_wrap, optimus_build, optimus_checkpoint_load, artifact_load,
                   classifier_from_base):
        assert hasattr(loader, "__wrapped__"), loader.__name__
