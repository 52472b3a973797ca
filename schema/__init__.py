"""The GraphQL API's description: types, inputs, enums, the Schema and its extensions."""
