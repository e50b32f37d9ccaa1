; TypeScript and TSX tags for qwen-ls: upstream tree-sitter-typescript tags.scm, extended with classes, enums,
; type aliases, heritage clauses, all type references and import references. Shared by the `typescript` and
; `tsx` grammars; the patterns JavaScript shares are in ecmascript/tags.scm, which these rows inherit.
; Captures: @name, @definition.<kind> / @reference.<kind>, @import. The first pattern that captures a node wins.

; ---- definitions ----
(method_signature name: (property_identifier) @name) @definition.method
(abstract_method_signature name: (property_identifier) @name) @definition.method
(function_signature name: (identifier) @name) @definition.function
(class_declaration name: (type_identifier) @name) @definition.class
(abstract_class_declaration name: (type_identifier) @name) @definition.class
(class name: (type_identifier) @name) @definition.class
(interface_declaration name: (type_identifier) @name) @definition.interface
(type_alias_declaration name: (type_identifier) @name) @definition.type
(enum_declaration name: (identifier) @name) @definition.enum
(module name: (identifier) @name) @definition.module
(internal_module name: (identifier) @name) @definition.module

; ---- references ----
(implements_clause (type_identifier) @name @reference.implementation)
(extends_clause value: (identifier) @name @reference.implementation)
(extends_type_clause type: (type_identifier) @name @reference.implementation)
(type_identifier) @name @reference.type

; ---- imports ----
