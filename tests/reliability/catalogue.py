"""The catalogue of bad inputs: one `Case` per row of docs/BAD_INPUTS.md.

Each case is a `zoo` command line (with `{BAD}`: the folder tests/reliability/inputs.py fills,
and `{OUT}`: an output path that must not exist afterwards), the words its one `Error:` line
must hold (the input it names and the fix it suggests) and its exit code: 1 for a library error,
2 for click's usage errors. `xfail` holds the bug when the fix lies outside the files the
reliability work owns; the test is then a strict xfail, so fixing the bug turns it red until the
mark is removed.

Run `python -m tests.reliability.catalogue` to print the markdown table of docs/BAD_INPUTS.md
(messages as the CLI prints them today).
"""

from __future__ import annotations

import dataclasses

# Tiny, fast settings for the finetune cases (they all fail before training starts).
TINY = (
    "--option",
    "filters=[4]",
    "--option",
    "dense_units=4",
    "--input-shape",
    "16,16,1",
    "--epochs",
    "1",
    "--batch-size",
    "4",
    "--quiet",
)
FT = ("finetune", *TINY, "--out", "{OUT}")
CV = ("convert", "--quiet")
BENCH = ("bench", "--quiet", "--warmup", "0", "--runs", "1", "--batch-sizes", "1")
EV = ("evaluate",)
PR = ("predict",)


@dataclasses.dataclass(frozen=True)
class Case:
    """One bad input: the command, what its error line must say, and its exit code."""

    id: str
    input: str
    args: tuple[str, ...]
    expect: tuple[str, ...]
    exit_code: int = 1
    xfail: str | None = None

    @property
    def command(self) -> str:
        return "zoo " + " ".join(self.args[:1]) if self.args else "zoo"


CASES = [
    # ---------------------------------------------------------------- zoo list / info / group
    Case("zoo-unknown-model", "unknown model name", ("info", "no_such_model"),
         ("Unknown model 'no_such_model'", "zoo list")),
    Case("zoo-misspelt-model", "misspelt model name", ("info", "vgg16_flaten"),
         ("Did you mean: vgg16_flatten",)),
    Case("zoo-no-match", "pattern matching nothing", ("list", "zzz*"),
         ("No model matches 'zzz*'", "zoo list")),
    Case("zoo-unknown-task", "unknown --task", ("list", "--task", "audio"),
         ("'audio' is not one of",), 2),
    Case("zoo-unknown-command", "unknown subcommand", ("fintune",),
         ("No such command 'fintune'",), 2),
    # ---------------------------------------------------------------- finetune: data folders
    Case("data-missing-path", "--data path that does not exist",
         (*FT, "--data", "{BAD}/no_such_folder"), ("{BAD}/no_such_folder", "no such directory")),
    Case("data-empty-folder", "empty data folder", (*FT, "--data", "{BAD}/empty_folder"),
         ("{BAD}/empty_folder", "no class sub-folders", "own sub-folder")),
    Case("data-class-without-images", "a class folder with no images",
         (*FT, "--data", "{BAD}/class_without_images"),
         ("class_without_images/c", "has no readable images", "add images or remove")),
    Case("data-non-image-files", "a class folder holding only non-image files",
         (*FT, "--data", "{BAD}/class_of_text_files"),
         ("class_of_text_files/c", "has no readable images")),
    Case("data-single-class-folder", "a single class folder",
         (*FT, "--data", "{BAD}/single_class"), ("only one class folder ('only')", "at least 2")),
    Case("data-ambiguous-layout", "train/ and test/ folders holding images and class folders",
         (*FT, "--data", "{BAD}/ambiguous_layout"),
         ("{BAD}/ambiguous_layout can be read two ways", "?layout=classes", "?layout=splits")),
    Case("data-split-extra-class", "val/ holding a class folder that train/ lacks",
         (*FT, "--data", "{BAD}/split_extra_class"),
         ("val/ has class folder(s) c that train/ lacks",)),
    Case("data-split-without-train", "split folders val/ and test/ without train/",
         (*FT, "--data", "{BAD}/split_without_train"),
         ("need a train/ folder", "?layout=classes", "Received: test/, val/")),
    Case("spec-unknown-layout", "?layout= neither classes nor splits",
         (*FT, "--data", "{BAD}/good_images?layout=rows"),
         ("layout should be classes or splits",)),
    Case("csv-missing-files", "CSV manifest naming files that do not exist",
         (*FT, "--data", "{BAD}/missing_files.csv"),
         ("{BAD}/missing_files.csv", "2 of 3 files it names do not exist", "gone/1.png")),
    Case("csv-no-label-column", "CSV manifest without a label column",
         (*FT, "--data", "{BAD}/no_label_column.csv"),
         ("columns path,label", "Received: columns ['path', 'class']")),
    Case("csv-unknown-split", "CSV manifest with split 'dev'",
         (*FT, "--data", "{BAD}/bad_split.csv"),
         ("split should be train, val, validation or test", "split='dev'")),
    # ---------------------------------------------------------------- finetune: .npz arrays
    Case("npz-mismatched-xy", ".npz with x and y of different lengths",
         (*FT, "--data", "{BAD}/mismatched.npz"),
         ("{BAD}/mismatched.npz", "x has 12 rows but y has 9")),
    Case("npz-nan", "NaN in image data", (*FT, "--data", "{BAD}/nan.npz"),
         ("{BAD}/nan.npz", "NaN or inf", "replace or drop")),
    Case("npz-inf-sequences", "inf in sequence data",
         ("finetune", "--model", "lstm", "--option", "units=4", "--epochs", "1", "--quiet",
          "--out", "{OUT}", "--data", "{BAD}/inf_sequences.npz"),
         ("{BAD}/inf_sequences.npz", "NaN or inf")),
    Case("npz-label-out-of-range", "label 5 with 2 class_names",
         (*FT, "--data", "{BAD}/label_out_of_range.npz"),
         ("y_val has label 5 but class_names lists 2 classes",)),
    Case("npz-negative-labels", "negative labels", (*FT, "--data", "{BAD}/negative_labels.npz"),
         ("{BAD}/negative_labels.npz", "negative labels", "0..k-1")),
    Case("npz-single-class", "every label the same class",
         (*FT, "--data", "{BAD}/single_class.npz"),
         ("{BAD}/single_class.npz", "single class", "at least 2 classes")),
    Case("npz-one-hot", "one-hot labels", (*FT, "--data", "{BAD}/one_hot.npz"),
         ("{BAD}/one_hot.npz", "argmax(axis=1)")),
    Case("npz-no-labels", ".npz without y", (*FT, "--data", "{BAD}/no_labels.npz"),
         ("needs arrays 'x' and 'y'",)),
    Case("npz-truncated", "truncated .npz", (*FT, "--data", "{BAD}/truncated.npz"),
         ("{BAD}/truncated.npz", "not a readable .npz", "numpy.savez")),
    Case("npz-not-an-archive", "text file named .npz", (*FT, "--data", "{BAD}/text.npz"),
         ("{BAD}/text.npz", "not a readable .npz", "numpy.savez")),
    Case("npz-pickled-objects", "object arrays (pickle) in .npz",
         ("finetune", "--model", "lstm", "--quiet", "--out", "{OUT}",
          "--data", "{BAD}/pickled.npz"),
         ("{BAD}/pickled.npz", "pickle can run code", "lengths")),
    Case("npz-wrong-feature-width", "sequences of 4 features for a 6-feature model",
         ("finetune", "--model", "lstm", "--input-shape", "None,6", "--quiet", "--out", "{OUT}",
          "--data", "{BAD}/sequences.npz"),
         ("{BAD}/sequences.npz", "[4] features per step but the model takes 6",
          "input_shape=(None, 4)")),
    # ---------------------------------------------------------------- finetune: task mismatch
    Case("task-image-model-sequences", "image model given a sequence dataset",
         (*FT, "--data", "builtin:japanese_vowels"),
         ("builtin:japanese_vowels holds sequences but the model takes images", "builtin:digits")),
    Case("task-sequence-model-folder", "sequence model given an image folder",
         ("finetune", "--model", "lstm", "--quiet", "--out", "{OUT}",
          "--data", "{BAD}/good_images"),
         ("{BAD}/good_images", "can only feed an image model")),
    Case("task-sequence-model-images", "sequence model given image arrays",
         ("finetune", "--model", "lstm", "--quiet", "--out", "{OUT}",
          "--data", "{BAD}/images.npz"),
         ("{BAD}/images.npz", "looks like images", "use an image model")),
    # ---------------------------------------------------------------- finetune: data specs
    Case("spec-unknown-builtin", "unknown builtin dataset", (*FT, "--data", "builtin:nosuch"),
         ("Unknown builtin dataset 'nosuch'", "digits")),
    Case("spec-class-out-of-range", "class index beyond the data's classes",
         (*FT, "--data", "builtin:digits?classes=8-12"),
         ("class index 10 is out of range", "10 classes (0-9)")),
    Case("spec-unknown-query", "unknown query key", (*FT, "--data", "builtin:digits?clases=1"),
         ("Unknown data spec option 'clases'", "classes, per_class")),
    # ---------------------------------------------------------------- finetune: model files
    Case("from-truncated-keras", "--from a truncated .keras",
         (*FT, "--data", "{BAD}/good_images", "--from", "{BAD}/truncated.keras"),
         ("{BAD}/truncated.keras", "not a valid .keras file")),
    Case("from-lambda-keras", "--from a .keras holding a Lambda layer",
         (*FT, "--data", "{BAD}/good_images", "--from", "{BAD}/lambda.keras"),
         ("{BAD}/lambda.keras", "safe mode refuses", "safe_mode=False")),
    Case("from-os-system-keras", "--from a .keras whose config names os.system",
         (*FT, "--data", "{BAD}/good_images", "--from", "{BAD}/os_system.keras"),
         ("{BAD}/os_system.keras", "Could not load")),
    Case("from-onnx", "--from an .onnx file",
         (*FT, "--data", "{BAD}/good_images", "--from", "{BAD}/garbage.onnx"),
         ("--from should be a run directory holding model.keras", "{BAD}/garbage.onnx")),
    Case("from-run-without-model", "--from a run directory without model.keras",
         (*FT, "--data", "{BAD}/good_images", "--from", "{BAD}/run_without_model"),
         ("no model.keras in it",)),
    Case("weights-missing-file", "--weights file that does not exist",
         (*FT, "--data", "{BAD}/good_images", "--weights", "{BAD}/missing.weights.h5"),
         ("{BAD}/missing.weights.h5", "does not exist")),
    Case("weights-other-architecture", "--weights of another architecture (an LSTM's for cnn)",
         (*FT, "--data", "{BAD}/good_images", "--weights", "{BAD}/lstm.weights.h5"),
         ("could not load weights from", "{BAD}/lstm.weights.h5", "another architecture")),
    Case("weights-not-keras", "--weights file that is not Keras weights",
         (*FT, "--data", "{BAD}/good_images", "--weights", "{BAD}/garbage.onnx"),
         ("{BAD}/garbage.onnx", "damaged or truncated", ".weights.h5")),
    Case("weights-tag-not-offered", "--weights imagenet for a model without pretrained weights",
         (*FT, "--data", "{BAD}/good_images", "--weights", "imagenet"),
         ("weights should be None or a file path", "weights='imagenet'")),
    # ---------------------------------------------------------------- finetune: options
    Case("ft-unknown-model", "unknown --model", (*FT, "--model", "no_such_model"),
         ("Unknown model 'no_such_model'",)),
    Case("ft-unknown-option", "unknown --option", (*FT, "--option", "nosuch=1"),
         ("does not accept option(s) nosuch", "Valid options: filters")),
    Case("ft-bad-option-value", "--option with a value of the wrong type",
         (*FT, "--option", "filters=abc"),
         ("filters should be a non-empty list of positive ints", "filters='abc'")),
    Case("ft-option-not-key-value", "--option without =", (*FT, "--option", "dropout"),
         ("should be KEY=VALUE",), 2),
    Case("ft-zero-epochs", "--epochs 0", ("finetune", "--epochs", "0", "--out", "{OUT}"),
         ("epochs should be an int >= 1", "epochs=0")),
    Case("ft-negative-epochs", "--epochs -3", ("finetune", "--epochs", "-3", "--out", "{OUT}"),
         ("epochs should be an int >= 1", "epochs=-3")),
    Case("ft-negative-head-epochs", "--head-epochs -1",
         ("finetune", "--head-epochs", "-1", "--out", "{OUT}"),
         ("head_epochs should be an int >= 0",)),
    Case("ft-zero-batch-size", "--batch-size 0",
         ("finetune", "--batch-size", "0", "--out", "{OUT}"),
         ("batch_size should be an int >= 1", "batch_size=0")),
    Case("ft-zero-lr", "--lr 0", ("finetune", "--lr", "0", "--out", "{OUT}"),
         ("lr should be a positive number", "lr=0.0")),
    Case("ft-negative-fine-tune-lr", "--fine-tune-lr -1",
         ("finetune", "--fine-tune-lr", "-1", "--out", "{OUT}"),
         ("fine_tune_lr should be a positive number",)),
    Case("ft-val-split-too-big", "--val-split 1.5",
         ("finetune", "--val-split", "1.5", "--out", "{OUT}"), ("val_split should be in [0, 1)",)),
    Case("ft-bad-input-shape", "--input-shape a,b",
         ("finetune", "--input-shape", "a,b", "--out", "{OUT}"),
         ("input_shape should be comma-separated positive ints", "32,32,3")),
    Case("ft-bad-unfreeze", "--unfreeze top", ("finetune", "--unfreeze", "top", "--out", "{OUT}"),
         ("unfreeze should be 'all' or a non-negative number",)),
    Case("ft-unknown-precision", "--precision float8",
         ("finetune", "--precision", "float8", "--out", "{OUT}"), ("'float8' is not one of",), 2),
    # ---------------------------------------------------------------- finetune: training recipe
    Case("ft-momentum-with-adam", "--momentum with adam",
         ("finetune", "--momentum", "0.9", "--out", "{OUT}"),
         ("momentum applies to --optimizer sgd only", "momentum=0.9")),
    Case("ft-momentum-out-of-range", "--momentum 1.5 with sgd",
         ("finetune", "--optimizer", "sgd", "--momentum", "1.5", "--out", "{OUT}"),
         ("momentum should be a number in [0, 1)", "momentum=1.5")),
    Case("ft-warmup-over-epochs", "--warmup-epochs not fewer than --epochs",
         ("finetune", "--epochs", "3", "--warmup-epochs", "3", "--out", "{OUT}"),
         ("warmup_epochs should be fewer than epochs", "warmup_epochs=3, epochs=3")),
    Case("ft-unknown-schedule", "unknown --lr-schedule",
         ("finetune", "--lr-schedule", "linear", "--out", "{OUT}"), ("'linear' is not one of",), 2),
    Case("ft-unknown-optimizer", "unknown --optimizer",
         ("finetune", "--optimizer", "rmsprop", "--out", "{OUT}"), ("'rmsprop' is not one of",), 2),
    Case("ft-label-smoothing-one", "--label-smoothing 1",
         ("finetune", "--label-smoothing", "1", "--out", "{OUT}"),
         ("label_smoothing should be a number in [0, 1)", "label_smoothing=1.0")),
    Case("ft-negative-patience", "--patience -1",
         ("finetune", "--patience", "-1", "--out", "{OUT}"), ("Invalid value for '--patience'",), 2),
    Case("config-unknown-schedule", "a config file with lr_schedule: linear",
         ("finetune", "--config", "{BAD}/schedule.yaml", "--out", "{OUT}"),
         ("lr_schedule should be one of constant, cosine, step, plateau", "lr_schedule='linear'")),
    Case("ft-resume-and-overwrite", "--resume with --overwrite",
         ("finetune", "--resume", "--overwrite", "--out", "{OUT}"),
         ("either --resume or --overwrite",), 2),
    # ---------------------------------------------------------------- finetune: config and run dir
    Case("config-missing", "--config that does not exist",
         ("finetune", "--config", "{BAD}/missing.yaml", "--out", "{OUT}"),
         ("{BAD}/missing.yaml", "does not exist")),
    Case("config-invalid-yaml", "--config with a YAML syntax error",
         ("finetune", "--config", "{BAD}/invalid.yaml", "--out", "{OUT}"),
         ("{BAD}/invalid.yaml", "is not valid YAML")),
    Case("config-unknown-key", "--config with an unknown key",
         ("finetune", "--config", "{BAD}/unknown_key.yaml", "--out", "{OUT}"),
         ("Unknown config key 'epoch'", "Valid keys: model")),
    Case("config-not-a-mapping", "--config holding a list",
         ("finetune", "--config", "{BAD}/not_a_mapping.yaml", "--out", "{OUT}"),
         ("{BAD}/not_a_mapping.yaml", "should hold a mapping")),
    Case("out-not-empty", "--out an existing non-empty folder",
         (*FT[:-2], "--data", "{BAD}/good_images", "--out", "{BAD}/good_images"),
         ("{BAD}/good_images", "is not empty", "--resume", "--overwrite")),
    Case("out-is-a-file", "--out an existing file",
         (*FT[:-2], "--data", "{BAD}/good_images", "--out", "{BAD}/a_regular_file"),
         ("{BAD}/a_regular_file", "is a file", "folder path")),
    Case("out-under-a-file", "--out under a regular file (read-only stand-in)",
         (*FT[:-2], "--data", "{BAD}/good_images", "--out", "{BAD}/a_regular_file/run"),
         ("Cannot create the run directory", "a_regular_file/run", "choose another --out")),
    Case("resume-nothing", "--resume a folder that holds no run",
         ("finetune", "--resume", "--out", "{BAD}/empty_folder"),
         ("Nothing to resume in", "{BAD}/empty_folder", "without --resume")),
    # ---------------------------------------------------------------- convert
    Case("cv-missing-source", "SOURCE that does not exist", (*CV, "{BAD}/missing.keras"),
         ("{BAD}/missing.keras", "does not exist"), 2),
    Case("cv-wrong-source-type", "SOURCE of an unknown type", (*CV, "{BAD}/notes.txt"),
         ("SOURCE should be a .keras file", "{BAD}/notes.txt")),
    Case("cv-dir-without-model", "SOURCE folder without model.keras",
         (*CV, "{BAD}/empty_folder"), ("a directory without model.keras",)),
    Case("cv-truncated-keras", "truncated .keras", (*CV, "{BAD}/truncated.keras", "--out", "{OUT}"),
         ("{BAD}/truncated.keras", "not a valid .keras file")),
    Case("cv-lambda-keras", ".keras holding a Lambda layer",
         (*CV, "{BAD}/lambda.keras", "--out", "{OUT}"),
         ("{BAD}/lambda.keras", "safe mode refuses", "safe_mode=False")),
    Case("cv-garbage-onnx-preflight", "garbage .onnx, --preflight",
         (*CV, "{BAD}/garbage.onnx", "--preflight"),
         ("{BAD}/garbage.onnx", "is not a valid ONNX file")),
    Case("cv-garbage-onnx", "garbage .onnx to fp16",
         (*CV, "{BAD}/garbage.onnx", "--precision", "fp16", "--out", "{OUT}"),
         ("garbage.onnx", "not a valid ONNX file")),
    Case("cv-custom-op-onnx", ".onnx with an op from an unknown domain",
         (*CV, "{BAD}/custom_op.onnx", "--precision", "fp16", "--out", "{OUT}"),
         ("custom_op.onnx", "com.example.evil")),
    Case("cv-onnx-input-vs-calib", "ONNX input 'pixels_in' (N, 4) vs image calibration data",
         (*CV, "{BAD}/pixels_in.onnx", "--precision", "int8", "--calib-data", "builtin:digits",
          "--out", "{OUT}"),
         ("pixels_in",)),
    Case("cv-onnx-already-fp32", "fp32 .onnx to fp32 .onnx",
         (*CV, "{BAD}/pixels_in.onnx", "--out", "{OUT}"),
         ("already an fp32 ONNX file", "--precision fp16|int8")),
    Case("cv-int8-without-data", "--precision int8 without calibration data",
         (*CV, "{BAD}/tiny.keras", "--precision", "int8", "--out", "{OUT}"),
         ("calibrates on real inputs", "--calib-data")),
    Case("cv-calib-missing", "--calib-data path that does not exist",
         (*CV, "{BAD}/tiny.keras", "--calib-data", "{BAD}/no_such_folder", "--out", "{OUT}"),
         ("{BAD}/no_such_folder", "no such directory")),
    Case("cv-run-data-nowhere", "run recorded with a relative data path found nowhere",
         (*CV, "{BAD}/old_run", "--precision", "int8", "--out", "{OUT}"),
         ("records data 'photos' relative to the directory that run was started from",
          "--calib-data PATH")),
    Case("cv-calib-nan", "--calib-data with NaN",
         (*CV, "{BAD}/tiny.keras", "--calib-data", "{BAD}/nan.npz", "--out", "{OUT}"),
         ("{BAD}/nan.npz", "NaN or inf")),
    Case("cv-calib-sequences-for-images", "image model, sequence calibration data",
         (*CV, "{BAD}/tiny.keras", "--calib-data", "builtin:japanese_vowels", "--out", "{OUT}"),
         ("holds sequences but the model takes images",)),
    Case("cv-calib-images-for-sequences", "sequence model, image calibration data",
         (*CV, "{BAD}/sequence.keras", "--calib-data", "{BAD}/images.npz", "--out", "{OUT}"),
         ("{BAD}/images.npz", "looks like images")),
    Case("cv-calib-other-classes", "calibration data with another class count than the model's",
         (*CV, "{BAD}/tiny.keras", "--calib-data", "builtin:digits", "--out", "{OUT}"),
         ("--calib-data builtin:digits has 10 classes but the model predicts 3", "Received:")),
    Case("cv-fp16-saved-model", "--to saved_model --precision fp16",
         (*CV, "{BAD}/tiny.keras", "--to", "saved_model", "--precision", "fp16", "--out", "{OUT}"),
         ("writes float32 only", "--to onnx")),
    Case("cv-unknown-target", "--to an unknown format", (*CV, "{BAD}/tiny.keras", "--to", "coreml"),
         ("'coreml' is not one of",), 2),
    Case("cv-opset-out-of-range", "--opset 5", (*CV, "{BAD}/tiny.keras", "--opset", "5"),
         ("5 is not in the range 13<=x<=21",), 2),
    Case("cv-zero-batch-size", "--batch-sizes 0", (*CV, "{BAD}/tiny.keras", "--batch-sizes", "0"),
         ("comma-separated positive ints",), 2),
    Case("cv-negative-atol", "--atol -1",
         (*CV, "{BAD}/tiny.keras", "--atol", "-1", "--out", "{OUT}"),
         ("atol",), 2),
    Case("cv-out-under-a-file", "--out under a regular file (read-only stand-in)",
         (*CV, "{BAD}/tiny.keras", "--out", "{BAD}/a_regular_file/model.onnx"),
         ("a_regular_file", "choose another output path")),
    # ---------------------------------------------------------------- bench
    Case("bench-missing", "artefact that does not exist", (*BENCH, "{BAD}/missing.onnx"),
         ("{BAD}/missing.onnx", "does not exist"), 2),
    Case("bench-unknown-type", "artefact of an unknown type", (*BENCH, "{BAD}/notes.txt"),
         ("Artifacts should be .keras, .onnx", "{BAD}/notes.txt")),
    Case("bench-truncated-keras", "truncated .keras", (*BENCH, "{BAD}/truncated.keras"),
         ("{BAD}/truncated.keras", "not a valid .keras file")),
    Case("bench-lambda-keras", ".keras holding a Lambda layer", (*BENCH, "{BAD}/lambda.keras"),
         ("{BAD}/lambda.keras", "safe mode refuses")),
    Case("bench-garbage-onnx", "garbage .onnx", (*BENCH, "{BAD}/garbage.onnx"),
         ("garbage.onnx", "not a valid ONNX file")),
    Case("bench-not-an-engine", "a file named .engine that is not a TensorRT plan",
         (*BENCH, "{BAD}/not_an_engine.engine"), ("{BAD}/not_an_engine.engine", "TensorRT")),
    Case("bench-zero-runs", "--runs 0", ("bench", "--runs", "0", "{BAD}/tiny.keras"),
         ("0 is not in the range x>=1",), 2),
    Case("bench-plot-under-a-file", "--plot under a regular file (read-only stand-in)",
         (*BENCH, "{BAD}/tiny.keras", "--plot", "{BAD}/a_regular_file/plot.png"),
         ("a_regular_file/plot.png", "not a folder", "choose another output path")),
    # ---------------------------------------------------------------- evaluate
    Case("ev-no-data", "a .keras file outside a run, no --data", (*EV, "{BAD}/tiny.keras"),
         ("evaluate needs labelled data", "--data SPEC", "{BAD}/tiny.keras")),
    Case("ev-images-for-sequences", "sequence model, image data",
         (*EV, "{BAD}/sequence.keras", "--data", "{BAD}/images.npz"),
         ("{BAD}/images.npz", "looks like images")),
    Case("ev-sequences-for-images", "image model, sequence data",
         (*EV, "{BAD}/tiny.keras", "--data", "builtin:japanese_vowels"),
         ("holds sequences but the model takes images",)),
    Case("ev-onnx-input-not-image", "ONNX input (N, 4): neither images nor sequences",
         (*EV, "{BAD}/pixels_in.onnx", "--data", "builtin:digits"),
         ("images (batch, H, W, C) or sequences", "pixels_in.onnx", "(batch, 4)")),
    Case("ev-other-class-count", "data with another class count than the model's",
         (*EV, "{BAD}/tiny.keras", "--data", "{BAD}/good_images"),
         ("--data {BAD}/good_images has 2 classes but the model predicts 3", "Received:")),
    Case("ev-other-class-names", "data with other class names than the run recorded",
         (*EV, "{BAD}/run_cat_dog", "--data", "{BAD}/good_images"),
         ("should have the classes the run was trained on", "cat, dog", "classes a, b")),
    Case("ev-split-missing", "--split test of data without a test split",
         (*EV, "{BAD}/tiny.keras", "--data", "{BAD}/good_images", "--split", "test"),
         ("has no 'test' split", "'train', 'val'")),
    Case("ev-unknown-split", "--split holdout", (*EV, "{BAD}/tiny.keras", "--split", "holdout"),
         ("'holdout' is not one of",), 2),
    # ---------------------------------------------------------------- predict
    Case("pr-missing-input", "an input that does not exist",
         (*PR, "{BAD}/tiny.keras", "{BAD}/no_such.png"),
         ("{BAD}/no_such.png", "no such file, folder or match")),
    Case("pr-images-for-sequences", "image files for a sequence model",
         (*PR, "{BAD}/sequence.keras", "{BAD}/good_images"),
         ("Image files feed image models", "as an .npz with x")),
    Case("pr-npz-not-an-archive", "a text file named .npz as input",
         (*PR, "{BAD}/tiny.keras", "{BAD}/text.npz"), ("{BAD}/text.npz", "not a zip archive")),
    Case("pr-garbage-onnx", "garbage .onnx", (*PR, "{BAD}/garbage.onnx", "{BAD}/images.npz"),
         ("garbage.onnx", "not a valid ONNX file")),
    Case("pr-json-and-csv", "--json and --csv together",
         (*PR, "{BAD}/tiny.keras", "{BAD}/images.npz", "--json", "--csv"),
         ("either --json or --csv",), 2),
    Case("pr-zero-top-k", "--top-k 0", (*PR, "{BAD}/tiny.keras", "{BAD}/images.npz", "--top-k", "0"),
         ("0 is not in the range x>=1",), 2),
    # ---------------------------------------------------------------- finetune: --qat
    Case("qat-without-from", "--qat without --from",
         (*FT, "--data", "{BAD}/good_images", "--qat"), ("--qat", "--from")),
    Case("qat-sequence-model", "--qat on a recurrent model",
         (*FT, "--data", "{BAD}/good_images", "--from", "{BAD}/sequence.keras", "--qat"),
         ("--qat supports", "LSTM")),
    # ---------------------------------------------------------------- convert: --explain
    Case("cv-explain-without-int8", "--explain without --precision int8",
         (*CV, "{BAD}/tiny.keras", "--precision", "fp16", "--explain", "--out", "{OUT}"),
         ("--explain ranks the layers of an int8 conversion", "--precision int8")),
    # ---------------------------------------------------------------- convert: --precision auto
    Case("cv-auto-budget-not-a-number", "--max-accuracy-drop that is not a number",
         (*CV, "{BAD}/tiny.keras", "--precision", "auto", "--max-accuracy-drop", "one",
          "--out", "{OUT}"), ("should be a number of points", "max_accuracy_drop='one'")),
    Case("cv-auto-negative-budget", "negative --max-accuracy-drop",
         (*CV, "{BAD}/tiny.keras", "--precision", "auto", "--max-accuracy-drop", "-1",
          "--out", "{OUT}"), (">= 0", "max_accuracy_drop='-1'")),
    Case("cv-auto-without-labelled-data", "--precision auto on a .keras file outside a run",
         (*CV, "{BAD}/tiny.keras", "--precision", "auto", "--max-accuracy-drop", "1",
          "--out", "{OUT}"), ("held-out labelled data", "--eval-data")),
]  # fmt: skip


def _placeholders(text: str, bad: str, out: str) -> str:
    return text.replace("{BAD}", bad).replace("{OUT}", out)


def resolve(case: Case, bad: str, out: str) -> tuple[list[str], list[str]]:
    """The case's argv and expected words with `{BAD}`/`{OUT}` filled in."""
    return (
        [_placeholders(arg, bad, out) for arg in case.args],
        [_placeholders(word, bad, out) for word in case.expect],
    )


def markdown_table(messages: dict[str, str]) -> str:
    """The docs/BAD_INPUTS.md table: one row per case, with the message the CLI prints today."""
    rows = [
        "| # | id | bad input | command | message (`Error: ...`) | exit | status |",
        "|---|----|-----------|---------|-------------------------|------|--------|",
    ]
    for number, case in enumerate(CASES, 1):
        args = " ".join(a for a in case.args if a != "--quiet")
        args = args.replace(" ".join(TINY[:-1]), "TINY").replace("{BAD}", "BAD")
        args = args.replace("{OUT}", "OUT").replace("|", "\\|")
        message = messages.get(case.id, "").replace("|", "\\|")
        status = "ok"
        if case.xfail:
            wanted = ", ".join(f"`{w}`" for w in case.expect).replace("{BAD}", "BAD")
            status = f"**bug** (xfail): wanted {wanted}"
        rows.append(
            f"| {number} | `{case.id}` | {case.input} | `zoo {args}` | {message} | "
            f"{case.exit_code} | {status} |"
        )
    return "\n".join(rows)


def _current_messages() -> dict[str, str]:  # pragma: no cover - a docs helper
    import tempfile
    from pathlib import Path

    from click.testing import CliRunner

    from tests.reliability.inputs import make_bad_inputs
    from zoo.cli import main

    root = Path(tempfile.mkdtemp(prefix="kerazoo-bad-"))
    bad = str(make_bad_inputs(root / "BAD"))
    messages = {}
    for case in CASES:
        out = str(root / "OUT" / case.id / "out.onnx")
        argv, _ = resolve(case, bad, out)
        result = CliRunner().invoke(main, argv)
        lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
        text = lines[-1][len("Error: ") :] if lines else f"(no error line; exit {result.exit_code})"
        if case.xfail:
            text = (
                f"*today:* {text}"
                if lines
                else f"*today: traceback ({type(result.exception).__name__})*"
            )
        text = text.replace(bad, "BAD").replace(str(root / "OUT" / case.id), "OUT")
        messages[case.id] = text[:300]
    return messages


if __name__ == "__main__":  # pragma: no cover
    print(markdown_table(_current_messages()))
