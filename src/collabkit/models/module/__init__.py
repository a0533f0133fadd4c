"""Your own ``nn.Module`` as a full model (kind ``"module"``), the public extension point.

>>> import collabkit                                                    # doctest: +SKIP
>>> model = collabkit.fit(train, model=CollabNN(*collabkit.emb_sizes(train)))  # doctest: +SKIP

See :class:`ModuleRecommender` for what the module must look like and how it is saved.
"""

from collabkit.models.module._estimator import ModuleRecommender
from collabkit.models.module._module import CollabNN
from collabkit.models.module._spec import module_spec, remember_args

__all__ = ["ModuleRecommender", "CollabNN", "module_spec", "remember_args"]
