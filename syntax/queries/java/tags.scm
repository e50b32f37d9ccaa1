; Java tags for qwen-ls: upstream tree-sitter-java tags.scm, extended with enums, records, constructors,
; fields, all type references and import paths.
; Captures: @name, @definition.<kind> / @reference.<kind>, @import. The first pattern that captures a node wins.

; ---- definitions ----
(class_declaration name: (identifier) @name) @definition.class
(record_declaration name: (identifier) @name) @definition.class
(interface_declaration name: (identifier) @name) @definition.interface
(enum_declaration name: (identifier) @name) @definition.enum
(method_declaration name: (identifier) @name) @definition.method
(constructor_declaration name: (identifier) @name) @definition.method
(field_declaration declarator: (variable_declarator name: (identifier) @name)) @definition.variable

; ---- references ----
(method_invocation
  name: (identifier) @name
  arguments: (argument_list)) @reference.call
(object_creation_expression type: (type_identifier) @name) @reference.class
(superclass (type_identifier) @name) @reference.class
(type_list (type_identifier) @name) @reference.implementation
(type_identifier) @name @reference.type

; ---- imports ----
(import_declaration (scoped_identifier) @import)
