"""How a user's module is recorded in a model folder: its import path and its constructor
arguments, as JSON (never pickle)."""

from __future__ import annotations

import functools
import importlib
import inspect
from typing import Any, TypeVar

from torch import nn

from collabkit.errors import ConfigError, ModelFileError

__all__ = ["remember_args", "module_spec", "build_module"]

T = TypeVar("T", bound=type)

_ATTR = "_collabkit_init_args"


def remember_args(cls: T) -> T:
    """Class decorator: record the constructor arguments of every instance, so that a model
    built on it can be saved (``@collabkit.remember_args`` above ``class MyNet(nn.Module)``).
    """
    init = cls.__init__  # type: ignore[misc]

    @functools.wraps(init)
    def wrapped(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        if type(self) is cls or not hasattr(self, _ATTR):
            bound = inspect.signature(init).bind(self, *args, **kwargs)
            bound.apply_defaults()
            object.__setattr__(self, _ATTR, {k: v for k, v in bound.arguments.items()
                                              if k != "self"})

    cls.__init__ = wrapped  # type: ignore[misc]
    return cls


def _to_json(value: Any, where: str) -> Any:
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy / torch scalars
        return value.item()
    if isinstance(value, list | tuple):
        return [_to_json(v, where) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _to_json(v, where) for k, v in value.items()}
    raise ConfigError(f"cannot save argument {where}={value!r} of the module: collabkit saves "
                      "constructor arguments as JSON (numbers, strings, lists, dicts); build "
                      "the module from such arguments")


def _from_json(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_from_json(v) for v in value)
    if isinstance(value, dict):
        return {k: _from_json(v) for k, v in value.items()}
    return value


def module_spec(module: nn.Module) -> dict[str, Any]:
    """``{"class": "package.module:Class", "args": {...}}`` for ``module``.

    The arguments come from :func:`remember_args`, else from attributes named like the
    constructor's parameters (the scikit-learn convention: ``self.n_act = n_act``).

    Raises
    ------
    ConfigError
        The arguments cannot be found or are not JSON; the message says what to do.
    """
    cls = type(module)
    name = f"{cls.__module__}:{cls.__qualname__}"
    args = getattr(module, _ATTR, None)
    if args is None:
        params = [p for p in inspect.signature(cls.__init__).parameters.values()
                  if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        missing = [p.name for p in params if p.name not in vars(module)
                   and p.default is p.empty]
        if missing:
            raise ConfigError(
                f"cannot save a model built on {cls.__qualname__}: collabkit records the "
                f"module's constructor arguments, and {', '.join(missing)} "
                f"{'is' if len(missing) == 1 else 'are'} not stored on it. Decorate the class "
                "with @collabkit.remember_args, or keep each argument as an attribute of the "
                f"same name (self.{missing[0]} = {missing[0]})")
        args = {p.name: getattr(module, p.name, p.default) for p in params
                if p.name in vars(module) or p.default is not p.empty}
    return {"class": name, "args": {k: _to_json(v, k) for k, v in args.items()}}


def build_module(spec: dict[str, Any]) -> nn.Module:
    """The module that :func:`module_spec` described, freshly constructed.

    Raises
    ------
    ModelFileError
        The class cannot be imported here, or refuses the arguments.
    """
    target = str(spec.get("class", ""))
    mod_name, _, qualname = target.partition(":")
    try:
        obj: Any = importlib.import_module(mod_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError, ValueError) as e:
        raise ModelFileError(
            f"this model was trained on the module class {qualname or target!r} from "
            f"{mod_name!r}, which cannot be imported here ({e}); make that module importable "
            "(install it or add its folder to PYTHONPATH) before collabkit.load_model"
        ) from None
    if not (isinstance(obj, type) and issubclass(obj, nn.Module)):
        raise ModelFileError(f"{target!r} is not an nn.Module class; the model file was edited")
    args = {k: _from_json(v) for k, v in dict(spec.get("args", {})).items()}
    try:
        return obj(**args)
    except TypeError as e:
        raise ModelFileError(f"{target} refused the saved constructor arguments {args} ({e}); "
                             "the class changed since the model was saved") from None
