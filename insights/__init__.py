"""Who will churn, why, and what to do: batch scoring with churn factors, segments and retention actions.

`python -m insights score --data customers.csv --model serving_model/customer-model` (see docs/insights.md).
"""
