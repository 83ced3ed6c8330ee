"""The Effects page through AppTest, and the effect maths behind it (contrasts, shrinkage)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from app_helpers import FIT_PAGE, button, chart, current, fit, fitted_app, open_page, small_demo, texts

from bhm_core.forecast import effects
from ui.session import state

PAGE = "pages/effects.py"


@pytest.fixture
def app(monkeypatch, tmp_path):
    return fitted_app(monkeypatch, tmp_path, PAGE)


def effect_labels(figure) -> list[str]:
    return list(figure["layout"]["yaxis"]["ticktext"])


def test_without_a_fit_the_page_says_so_and_links_to_fitting(monkeypatch, tmp_path):
    small_demo(monkeypatch, tmp_path)
    at = open_page(PAGE)
    assert not at.exception
    assert "No current fit yet" in at.info[0].value
    assert at.get("page_link")[0].proto.page == "fit"
    assert not at.get("plotly_chart")


def test_renders_densities_store_strips_and_shrinkage(app):
    assert not app.exception and not app.error
    assert groups(app).value == ["weekday", "promo", "state_holiday", "school_holiday"]
    weekday = chart(app, "fx.ridge.weekday")
    labels = effect_labels(weekday)
    assert "Tue vs Mon" in labels and "Promo day" not in labels  # one chart per group
    assert effect_labels(chart(app, "fx.ridge.promo")) == ["Promo day"]
    assert "Sun vs Mon" not in labels  # demo stores never open on Sundays: only the prior knows
    assert "Sun vs Mon" in texts(app.caption)
    assert weekday["layout"]["xaxis"]["type"] == "log"
    assert weekday["layout"]["height"] < 400  # compact, with its own axis
    assert effect_labels(chart(app, "fx.strip.weekday")) == labels
    shrink = chart(app, "fx.shrinkage")
    assert "Promo day" in shrink["layout"]["xaxis"]["title"]["text"]
    # The rest of the groups is one click away.
    button(app, "All ").click()
    app.run()
    assert len(groups(app).value) > 4 and chart(app, "fx.ridge.day_of_month")
    button(app, "Weekday, promo, holidays").click()
    app.run()
    assert groups(app).value == ["weekday", "promo", "state_holiday", "school_holiday"]


def test_the_demo_truth_is_drawn_with_the_share_of_intervals_that_hold_it(app):
    from bhm_core.data import demo

    weekday = chart(app, "fx.ridge.weekday")
    truth = [t for t in weekday["data"] if t.get("name") == "true value (demo)"]
    tue = effect_labels(weekday).index("Tue vs Mon")
    expected = np.exp(demo.WEEKDAY_MU[1] - demo.WEEKDAY_MU[0])
    assert truth and any(abs(x - expected) < 1e-6 for x in truth[0]["x"]), (truth, tue)
    assert "chain-wide 90 % intervals shown hold theirs" in texts(app.caption)
    # Promo day shares its days with the promo x weekday terms: no single true value to draw.
    assert not [t for t in chart(app, "fx.ridge.promo")["data"] if t.get("name") == "true value (demo)"]
    assert "No true value to compare for Promo day" in texts(app.caption)
    app.selectbox(key="w.fx.shrink_effect").set_value("weekday_Tue")
    app.run()
    assert any(t.get("name") == "true value (demo)" for t in chart(app, "fx.shrinkage")["data"])
    assert "holds the store's true Tue vs Mon effect" in texts(app.markdown)


def groups(at):
    return next(m for m in at.multiselect if m.label == "Feature groups")


def test_group_filter_and_shrinkage_effect(app):
    groups(app).set_value(["promo", "school_holiday"])
    app.run()
    assert effect_labels(chart(app, "fx.ridge.promo")) == ["Promo day"]
    assert effect_labels(chart(app, "fx.ridge.school_holiday")) == ["School holiday"]
    app.selectbox(key="w.fx.shrink_effect").set_value("school_holiday")
    app.run()
    assert "School holiday" in chart(app, "fx.shrinkage")["layout"]["xaxis"]["title"]["text"]
    app.toggle(key="w.fx.hide_unseen").set_value(False)
    groups(app).set_value(["weekday"])
    app.run()
    assert "Sun vs Mon" in effect_labels(chart(app, "fx.ridge.weekday"))


def test_another_fit_can_be_overlaid(app):
    first = current(app)
    app.switch_page(FIT_PAGE).run()
    app.number_input(key=f"{state.W_PRIOR}.promo.mu_loc").set_value(1.0)
    app.number_input(key=f"{state.W_PRIOR}.promo.mu_scale").set_value(0.05)
    fit(app)
    assert current(app).key != first.key
    app.switch_page(PAGE).run()
    app.selectbox(key="w.fx.overlay").set_value(first.key)
    app.run()
    assert not app.exception and not app.error
    legend = [t["name"] for t in chart(app, "fx.ridge.weekday")["data"] if t.get("showlegend") is not False]
    assert legend[:2] == [legend[0], legend[1]] and legend[1].startswith("other fit")
    table = next(d for d in app.dataframe).value
    assert list(table.columns[:2]) == ["Effect", "Group"]
    assert table.shape[1] == 2 + 6 + 1  # median and 90 % interval of each fit, the true value


def test_contrasts_use_seen_references():
    names = (
        "weekday_Mon",
        "weekday_Tue",
        "promo",
        "state_holiday_0",
        "state_holiday_a",
        "variant_a/a",
        "variant_b/c",
        "variant_d/a",
    )
    groups = (
        "weekday",
        "weekday",
        "promo",
        "state_holiday",
        "state_holiday",
        "store_variant",
        "store_variant",
        "store_variant",
    )
    seen = (True, True, True, True, True, True, True, False)
    items = {c.label: np.array(c.weights) for c in effects.contrasts(names, groups, seen)}
    assert list(items) == [
        "Tue vs Mon",
        "Promo day",
        "Public holiday",
        "Type a, assortment a",
        "Type b, assortment c",
        "Type d, assortment a",
    ]
    assert items["Tue vs Mon"].tolist() == [-1, 1, 0, 0, 0, 0, 0, 0]
    assert items["Public holiday"].tolist() == [0, 0, 0, -1, 1, 0, 0, 0]
    # variants relative to the average of the two variants the data have, not the unseen one
    assert np.allclose(items["Type a, assortment a"], [0, 0, 0, 0, 0, 0.5, -0.5, 0])
    assert np.allclose(items["Type d, assortment a"], [0, 0, 0, 0, 0, -0.5, -0.5, 1])


def test_shrinkage_pulls_a_store_with_few_days_toward_the_chain():
    from bhm_core.data.sources import DemoSource, load_dataset
    from bhm_core.inference.fit import fit as engine_fit
    from bhm_core.model.config import FitConfig

    cube = load_dataset(DemoSource(n_stores=12, n_days=200, seed=2)).cube()
    # Store 1 keeps only 12 observed days: its own least squares is noisy.
    observed = cube.observed.copy()
    keep = np.flatnonzero(observed[0])[:12]
    observed[0] = False
    observed[0, keep] = True
    object.__setattr__(cube, "observed", observed)
    result = engine_fit(cube, FitConfig(steps=200, chunk_steps=100))
    seen = effects.feature_days(cube) > 0
    items = [c for c in effects.contrasts(result.feature_names, result.feature_groups, seen) if seen[c.feature]]
    latents = effects.latent_samples(result)
    frame = effects.shrinkage(result, cube, items, latents)
    chain = effects.global_effects(result, items, latents).groupby("effect")["multiplier"].median()
    few = frame[frame["store"] == cube.store_ids[0]].set_index("effect")
    assert (few["observed_days"] == 12).all()
    # Over its effects together (one effect alone may move away, with the others it is estimated
    # jointly with), the store's estimates sit closer to the chain's than its own least squares.
    hierarchical = np.abs(np.log(few["hierarchical"] / chain[few.index])).mean()
    alone = np.abs(np.log(few["least_squares"] / chain[few.index])).mean()
    assert hierarchical < 0.5 * alone


def test_extension_feature_groups_get_effects_too():
    from bhm_core.data.features import FeatureSpec
    from bhm_core.data.sources import DemoSource, load_dataset

    cube = (
        load_dataset(DemoSource(n_stores=6, n_days=120))
        .cube()
        .with_spec(FeatureSpec(promo_weekday=True, month=True, trend=True))
    )
    seen = effects.feature_days(cube) > 0
    items = effects.contrasts(cube.feature_names, cube.design.groups, seen)
    labels = [c.label for c in items]
    assert len(labels) == len(set(labels))
    assert "Promo × Mon" in labels and "Trend per year" in labels and "Month Jan" in labels
    month = next(c for c in items if c.label == "Month Jan")
    assert abs(sum(month.weights)) < 1e-9  # relative to the average of the seen months


def test_a_store_type_with_a_slash_never_breaks_the_labels():
    names = ("weekday_Mon", "weekday_Tue", "variant_a/x/a", "variant_b/c")
    groups = ("weekday", "weekday", "store_variant", "store_variant")
    items = effects.contrasts(names, groups, (True,) * 4)
    assert [c.id for c in items] == ["weekday_Tue", "variant_a/x/a", "variant_b/c"]
    assert [c.label for c in items][1:] == ["Type/assortment a/x/a", "Type b, assortment c"]


def test_effects_and_comparison_with_a_slash_in_a_store_type(monkeypatch, tmp_path):
    """A store type holding '/' once crashed the Effects page and the comparison of two fits."""
    from app_helpers import APP
    from streamlit.testing.v1 import AppTest

    from bhm_core.data.demo import generate_demo, to_kaggle_csv
    from bhm_core.data.sources import DemoSource, KaggleDirSource

    small_demo(monkeypatch, tmp_path)
    data = generate_demo(DemoSource(n_stores=12, n_days=200))
    stores = data.stores.copy()
    stores["StoreType"] = stores["StoreType"].replace({"a": "a/x"})
    to_kaggle_csv(replace(data, stores=stores), tmp_path / "slash")
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.session_state[state.SOURCE] = KaggleDirSource(str(tmp_path / "slash"))
    at.run()
    at.switch_page(FIT_PAGE).run()
    fit(at)
    first = current(at)
    at.number_input(key=f"{state.W_SVI}.seed").set_value(3)
    fit(at)
    assert current(at).key != first.key and not at.exception
    at.selectbox(key="fit.compare").set_value(first.key)
    at.run()
    assert not at.exception and not at.error
    at.switch_page(PAGE).run()
    groups(at).set_value(["store_variant"])
    at.run()
    assert not at.exception and not at.error
    assert any("a/x" in label for label in effect_labels(chart(at, "fx.ridge.store_variant")))
