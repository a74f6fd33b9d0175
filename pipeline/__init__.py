"""Pipeline definition shared by every runner, plus input staging, gates and the run summary."""
