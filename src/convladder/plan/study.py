"""What the study reported (from ../shared/seed/study.md), to set beside our measurements.

These are the study's numbers, not ours: the report prints them in their own columns.
"""

# Accuracies the study reported per run; None where it reported none.
STUDY_RESULTS = {
    "A": {"epochs": 150, "train_acc": None, "val_acc": 0.18, "test_acc": None},
    "B": {"epochs": 150, "train_acc": None, "val_acc": 0.28, "test_acc": None},
    "C": {"epochs": 16, "train_acc": None, "val_acc": 0.10, "test_acc": None},
    "D": {"epochs": None, "train_acc": None, "val_acc": 0.59, "test_acc": None},
    "E": {"epochs": None, "train_acc": None, "val_acc": 0.01, "test_acc": None},
    "F": {"epochs": None, "train_acc": 0.978, "val_acc": 0.75, "test_acc": 0.75},
    "G": {"epochs": None, "train_acc": 0.90, "val_acc": 0.83, "test_acc": 0.83},
    "GAP": {"epochs": 120, "train_acc": 0.88, "val_acc": 0.83, "test_acc": 0.83},
    "GAP+": {"epochs": 240, "train_acc": 0.93, "val_acc": 0.85, "test_acc": 0.84},
}

# The study's validation split: 8,000 of the 50,000 training images, drawn at random (random_split, unseeded), so its
# validation accuracies carry that sample's noise; and it reports accuracies to two decimals.
STUDY_VAL_IMAGES = 8_000
STUDY_ROUNDING = 0.005

# The study's slow starts: the epoch at which validation accuracy began to climb (read from its text:
# "around"), and validation accuracy after 150 epochs.
STUDY_CURVES = {"A": {"take_off": 140, "val_acc": 0.18}, "B": {"take_off": 110, "val_acc": 0.28}}

# The study's parameter count for model A and the formula it gave for it.
STUDY_PARAMS_A = 181
STUDY_PARAMS_A_FORMULA = "(3*3+1)*5*2 + 5*4*4 + 1"

# The sizes of the study's two photos, (width, height) as the study wrote them: a 32x20 cat and a 32x18 frog.
STUDY_SIZES = ((32, 20), (32, 18))

# The study's GAP predictions on its two photos of other sizes.
STUDY_OTHER_SIZES = [
    {"photo": "cat, 32x20", "predicted": "airplane", "probability": 0.973, "cat_probability": 0.025},
    {"photo": "frog, 32x18", "predicted": "frog", "probability": 0.999999},
]
