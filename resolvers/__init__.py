"""What the API does: root-field resolvers, authorisation and the real-time fan-out."""
