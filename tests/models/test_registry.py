"""models.registry: the explicit kind table (issue 9)."""

from pathlib import Path

import pytest

import collabkit
from collabkit.errors import ConfigError, UnknownModelKindError
from collabkit.models import registry
from collabkit.models.base import Recommender
from collabkit.testing import planted_low_rank


def test_every_kind_resolves_to_its_class():
    assert registry.kinds() == sorted(registry.KINDS)
    for kind in registry.kinds():
        cls = registry.get(kind)
        assert issubclass(cls, Recommender) and cls.kind == kind
    assert collabkit.model_kinds() == registry.kinds()


def test_unknown_kind_names_the_known_ones():
    with pytest.raises(UnknownModelKindError) as err:
        registry.get("svm")
    assert str(err.value) == ("unknown model kind 'svm'; known kinds: "
                              + ", ".join(registry.kinds()))
    assert isinstance(err.value, ConfigError)
    assert registry.find("svm") is None


def test_one_message_everywhere():
    with pytest.raises(ConfigError, match="unknown model kind 'svm'; known kinds: "):
        collabkit.fit(None, "svm")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown model kind 'svm'; known kinds: "):
        collabkit.Ensemble(members=("svm",)).fit(
            planted_low_rank(n_users=10, n_items=8, k=1, seed=0).data)


def test_no_registration_by_subclassing():
    """A subclass with a kind is not a known kind until the table says so."""

    class Other(collabkit.GlobalMean):
        kind = "other-kind"

    assert registry.find("other-kind") is None
    assert not hasattr(Recommender, "_registry")


def test_ensemble_imports_no_member_module():
    """The ensemble resolves members through the registry, not by side-effect imports."""
    import collabkit.models.ensemble as ensemble

    src = Path(ensemble.__file__).read_text()
    assert "import collabkit.models.bpmf" not in src and "noqa: F401" not in src


def test_a_new_kind_needs_only_its_module_and_one_registry_line(tmp_path, monkeypatch):
    """issue 9: adding a kind touches its module, the registry, its tests and the README.
    Here the module is written on the fly and the registry line patched in; fit by kind,
    save/load, the class by name and the ensemble then know it with no other edit."""
    (tmp_path / "mykind_mod.py").write_text(
        "from collabkit.models.baseline import BiasBaseline\n\n\n"
        "class MyKind(BiasBaseline):\n    kind = 'mykind'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(registry.KINDS, "mykind", "mykind_mod:MyKind")
    data = planted_low_rank(n_users=20, n_items=10, k=1, seed=0).data
    model = collabkit.fit(data, "mykind")
    assert type(model).__name__ == "MyKind" and "mykind" in collabkit.model_kinds()
    back = collabkit.load_model(model.save(str(tmp_path / "saved")))
    assert type(back) is type(model) and collabkit.MyKind is type(model)
    ens = collabkit.Ensemble(members=("mykind", "bias"), refit=False, random_state=0).fit(data)
    assert [m.kind for m in ens.members_] == ["mykind", "bias"]
