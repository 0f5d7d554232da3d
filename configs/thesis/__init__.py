"""The thesis's experiments at full scale: one file per table or figure, each with its grid."""
