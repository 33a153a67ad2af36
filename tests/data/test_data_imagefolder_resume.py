"""Training on an image folder: a run resumed mid-epoch equals the uninterrupted run."""

from __future__ import annotations

from pathlib import Path

from resume_support import straight_and_resumed

from supernet.config import compose_config
from tests.data.folder_support import tiny_folder

# 48 images, 8 held out: 40 / batch 8 = 5 steps an epoch, so step 2 is mid-epoch and 7 is in the next.
FOLDER_RUN = ["data.name=imagefolder", "data.val_size=8", "data.batch_size=8", "val.calib_images=16",
              "val.middle_children=0", "val.batch_size=16", "threads=1", "log.every=2", "log.progress=false",
              "epochs=2"]


def test_resume_mid_epoch_on_an_image_folder_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    folder = tiny_folder(tmp_path / "folder")
    overrides = [*FOLDER_RUN, f"data.root={folder}"]
    straight_and_resumed(tmp_path, lambda *extra: compose_config("train", [*overrides, *extra]),
                         stop=2, total=7)
    # The run decoded at the space's largest resolution (small: 28 px), and its config says so.
    saved = (tmp_path / "straight" / "config.yaml").read_text()
    assert "image_size: 28" in saved and "crop: auto" in saved
