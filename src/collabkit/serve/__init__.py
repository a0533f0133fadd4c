"""``collabkit serve``: one saved model over HTTP, with feedback stored durably in SQLite.

Layering: this package sits above :mod:`collabkit.api` and uses only the library's public
API; nothing in the library imports it. Its dependencies are the ``serve`` extra
(``pip install "collabkit[serve]"``).

======  ===================================  ====================================  ===========
method  path                                 what                                  who
======  ===================================  ====================================  ===========
GET     /v1/health                           liveness, model fingerprint, store    anyone
GET     /v1/model                            model card                            any token
POST    /v1/visitors                         new visitor: user id + secret token   anyone
GET     /v1/items?q=&genre=&limit=           item search by title and genre        any token
GET     /v1/items/{item_id}/similar?k=       most similar items (co-rating)        any token
POST    /v1/onboarding/items                 items to ask a new user about         any token
GET     /v1/users/{user_id}/recommendations  top-k, tier, policy (re-ranking)      own / app
GET     /v1/genres                           the model's genres                    any token
GET     /v1/users/{user_id}/genre-start      top-k from liked genres (tier genre)  own / app
POST    /v1/predictions                      ratings for (user, item) pairs        own / app
GET     /v1/users/{user_id}/explain?item_id  why a prediction                      own / app
POST    /v1/feedback                         store ratings (idempotent request id) own / app
GET     /v1/users/{user_id}/ratings          the user's stored ratings             own / app
DELETE  /v1/users/{user_id}                  delete the user's stored data         own / app
POST    /v1/admin/reload                     load the model folder again           app
GET     /metrics                             Prometheus text, feedback-loop gauges anyone
GET     /                                    the onboarding page (serve/static)    anyone
======  ===================================  ====================================  ===========
"""

from collabkit.serve.app import ServeConfig, create_app, default_db_path

__all__ = ["ServeConfig", "create_app", "default_db_path"]
