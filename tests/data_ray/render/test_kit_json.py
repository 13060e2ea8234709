import json

import numpy as np

from pulse.data_ray.render.kit_json import export_images, kit_json
from pulse.data_ray.render.renderer import Renderer, RenderParams
from pulse.data_ray.render.stage import RenderStage

# Top-level and per-lead keys of ecg-image-kit's level-2 JSON (reference sample at commit 27b90f5).
KIT_KEYS = {
    "sampling_frequency",
    "width",
    "height",
    "x_grid",
    "y_grid",
    "resolution",
    "pad_inches",
    "grid_line_color_major",
    "grid_line_color_minor",
    "ecg_plot_color",
    "dc_pulse",
    "bw",
    "gridlines",
    "printed_text",
    "number_of_columns_in_image",
    "full_mode_lead",
    "wrinkles",
    "crease_angle",
    "number_of_creases_horizontally",
    "number_of_creases_vertically",
    "augment",
    "crop",
    "temperature",
    "rotate",
    "noise",
    "leads",
}
KIT_LEAD_KEYS = {
    "lead_name",
    "start_sample",
    "end_sample",
    "plotted_pixels",
    "lead_bounding_box",
    "text_bounding_box",
}


def test_kit_json_has_the_kit_fields_and_our_true_values(render_data):
    params = RenderParams(dpi=100, clean_fraction=0.0, distortions={"rotation": {"p": 1.0}})
    out = Renderer(params).render(render_data.synthetic_record(fs=500.0), seed=9)
    doc = json.loads(
        json.dumps(
            kit_json(
                **{
                    k: getattr(out, k)
                    for k in ("width", "height", "layout", "distortions", "leads", "label_boxes")
                }
            )
        )
    )
    assert set(doc) >= KIT_KEYS
    assert set(doc["leads"][0]) == KIT_LEAD_KEYS
    assert doc["sampling_frequency"] == 500.0 and doc["resolution"] == out.dpi
    assert doc["x_grid"] == round(5 * 100 / 25.4 * out.distortions.get("output_scale", 1.0), 2)
    assert doc["rotate"] == out.distortions["rotation"]["degrees"] != 0  # the sampled angle, not the maximum
    assert doc["full_mode_lead"] == "II" and doc["number_of_columns_in_image"] == 4
    lead = doc["leads"][0]
    yx = np.asarray(lead["plotted_pixels"])
    assert np.allclose(yx[:, 0], out.leads[0]["y"], atol=0.01) and np.allclose(
        yx[:, 1], out.leads[0]["x"], atol=0.01
    )
    assert lead["lead_bounding_box"]["0"] == [
        round(out.leads[0]["bbox"][1], 2),
        round(out.leads[0]["bbox"][0], 2),
    ]


def test_export_from_image_parquet(render_data, tmp_path):
    from pulse import io

    table = RenderStage({"dpi": 40})(render_data.record_table([render_data.synthetic_record("ptbxl/00001")]))
    io.write_parquet(table, str(tmp_path / "images" / "part-0.parquet"))
    written = export_images(str(tmp_path / "images"), str(tmp_path / "kit"))
    assert written == [str(tmp_path / "kit" / "ptbxl" / "00001.json")]
    doc = json.loads(io.read_text(written[0]))
    assert len(doc["leads"]) == 13 and set(doc) >= KIT_KEYS
