"""The editor-facing shot-list format.

``yaml_source`` reads YAML keeping line marks, ``schema_check`` applies schemas/shotlist.schema.json,
``semantic`` checks references, media and timecodes, ``load`` turns a valid document into the typed
``types.ShotList``.
"""
