"""The "Try: curl ..." line `tierserve up` prints: a model that is in the store in use.

`hint` is pure (store listing in, text out); `try_hint` reads the store, with a bound, so a
store that hangs never holds up the banner.
"""

from __future__ import annotations

import concurrent.futures

from base.errors import TierserveError

LIST_TIMEOUT_S = 10.0
PREFERRED = "example-a"  # the first of the models `up` writes into its default store


def hint(store: str, router_url: str, models: list[str] | None, problem: str | None) -> str:
    """`models`: the store's models (None when it could not be read, then `problem` says why)."""
    if models is None:
        return (f"The model store {store} cannot be read right now ({problem}). "
                "Requests for its models fail until it can; fix it while tierserve runs.")
    if not models:
        return (f"The model store {store} holds no models yet: add one in TF Serving's layout "
                f"{store.rstrip('/')}/<model>/<version>/saved_model.pb, then ask "
                f"{router_url}/v1/models/<model>:predict")
    model = PREFERRED if PREFERRED in models else models[0]
    body = '{"instances": [1.0, 2.0]}' if model.startswith("example-") \
        else '{"instances": [...]}'  # the input depends on the model
    shown = ", ".join(models[:5]) + (f" and {len(models) - 5} more" if len(models) > 5 else "")
    return (f"The store holds {shown}.\n"
            f"Try: curl -d '{body}' {router_url}/v1/models/{model}:predict")


def list_store(store: str, timeout: float = LIST_TIMEOUT_S) -> tuple[list[str] | None, str | None]:
    """(model names, None) or (None, the reason the store could not be listed)."""
    from pools.store import open_store

    def listing() -> list[str]:
        return open_store(store).list_models()

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(listing).result(timeout=timeout), None
    except concurrent.futures.TimeoutError:
        return None, f"no answer within {timeout:.0f} s"
    except TierserveError as exc:
        return None, exc.message
    except OSError as exc:
        return None, str(exc)
    finally:
        pool.shutdown(wait=False)


def try_hint(store: str, router_url: str) -> str:
    models, problem = list_store(store)
    return hint(store, router_url, models, problem)
