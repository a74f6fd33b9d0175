"""The real-world input cases in ../shared/field-cases/ (its README says what each must do)."""
from __future__ import annotations

from pipeline.config import PROJECT_ROOT

FIELD_CASES = PROJECT_ROOT.parent / "shared" / "field-cases"
SEMICOLON = FIELD_CASES / "semicolon_decimal_comma.csv"
DUPLICATE_HEADER = FIELD_CASES / "duplicate_header.csv"
SPACES_IN_NAMES = FIELD_CASES / "spaces_in_names.csv"
CHURN_RATE_2PCT = FIELD_CASES / "churn_rate_2pct.csv"
SIXTY_CUSTOMERS = FIELD_CASES / "sixty_customers.csv"
BLANK_NUMBERS = FIELD_CASES / "blank_numbers_yes_no_label.csv"
REST_LIST_WRAPPED = FIELD_CASES / "rest_list_wrapped_values.json"
