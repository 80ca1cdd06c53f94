"""marshmallow schemas, one module per resource: <Noun>Schema out, <Noun>CreateSchema/UpdateSchema in, <Noun>QueryArgsSchema."""
