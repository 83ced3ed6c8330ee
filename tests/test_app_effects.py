"""The Effects page through AppTest, and the effect maths behind it (contrasts, shrinkage)."""

from __future__ import annotations

import numpy as np
import pytest
from app_helpers import FIT_PAGE, chart, current, fit, fitted_app, open_page, small_demo, texts

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
    ridge = chart(app, "fx.ridgeline")
    labels = effect_labels(ridge)
    assert "Promo day" in labels and "Tue vs Mon" in labels
    assert "Sun vs Mon" not in labels  # demo stores never open on Sundays: only the prior knows
    assert "Sun vs Mon" in texts(app.caption)
    assert ridge["layout"]["xaxis"]["type"] == "log"
    strip = chart(app, "fx.strip")
    assert effect_labels(strip) == labels
    shrink = chart(app, "fx.shrinkage")
    assert "Promo day" in shrink["layout"]["xaxis"]["title"]["text"]


def groups(at):
    return next(m for m in at.multiselect if m.label == "Feature groups")


def test_group_filter_and_shrinkage_effect(app):
    groups(app).set_value(["promo", "school_holiday"])
    app.run()
    assert effect_labels(chart(app, "fx.ridgeline")) == ["Promo day", "School holiday"]
    app.selectbox(key="w.fx.shrink_effect").set_value("School holiday")
    app.run()
    assert "School holiday" in chart(app, "fx.shrinkage")["layout"]["xaxis"]["title"]["text"]
    app.toggle(key="w.fx.hide_unseen").set_value(False)
    groups(app).set_value(["weekday"])
    app.run()
    assert "Sun vs Mon" in effect_labels(chart(app, "fx.ridgeline"))


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
    legend = [t["name"] for t in chart(app, "fx.ridgeline")["data"] if t.get("showlegend") is not False]
    assert len(legend) == 2 and legend[1].startswith("other fit")
    table = next(d for d in app.dataframe).value
    assert table.shape[1] == 6  # median and 90 % interval of each fit


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
