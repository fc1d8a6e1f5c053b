"""Named secrets that task params reference as `{"secret": "name"}`."""
