; Rust tags for qwen-ls: upstream tree-sitter-rust tags.scm, extended with impl blocks, constants,
; type references and use/import references.
; Captures: @name (the identifier), @definition.<kind> / @reference.<kind> (the whole node), @import (a module
; path as written). Where two patterns capture the same node the first one wins (method before function).

; ---- definitions ----
(struct_item name: (type_identifier) @name) @definition.struct
(enum_item name: (type_identifier) @name) @definition.enum
(union_item name: (type_identifier) @name) @definition.union
(type_item name: (type_identifier) @name) @definition.type
(declaration_list (function_item name: (identifier) @name) @definition.method)
(declaration_list (function_signature_item name: (identifier) @name) @definition.method)
(function_item name: (identifier) @name) @definition.function
(function_signature_item name: (identifier) @name) @definition.function
(trait_item name: (type_identifier) @name) @definition.interface
(mod_item name: (identifier) @name) @definition.module
(macro_definition name: (identifier) @name) @definition.macro
(const_item name: (identifier) @name) @definition.constant
(static_item name: (identifier) @name) @definition.constant
(enum_variant name: (identifier) @name) @definition.variant
(impl_item
  type: [
    (type_identifier) @name
    (generic_type type: (type_identifier) @name)
    (scoped_type_identifier name: (type_identifier) @name)
  ]) @definition.impl

; ---- references ----
(call_expression function: (identifier) @name) @reference.call
(call_expression function: (field_expression field: (field_identifier) @name)) @reference.call
(call_expression function: (scoped_identifier name: (identifier) @name)) @reference.call
(call_expression function: (generic_function function: (identifier) @name)) @reference.call
(call_expression function: (generic_function function: (scoped_identifier name: (identifier) @name))) @reference.call
(macro_invocation macro: (identifier) @name) @reference.call
(impl_item trait: (type_identifier) @name) @reference.implementation
(impl_item trait: (generic_type type: (type_identifier) @name)) @reference.implementation
(scoped_identifier path: (identifier) @name) @reference.type
(struct_expression name: (type_identifier) @name) @reference.class
(type_identifier) @name @reference.type

; ---- imports ----
(use_declaration argument: (_) @import)
(use_declaration argument: (identifier) @name @reference.import)
(use_declaration argument: (scoped_identifier name: (identifier) @name) @reference.import)
(use_as_clause path: (identifier) @name @reference.import)
(use_as_clause path: (scoped_identifier name: (identifier) @name) @reference.import)
(use_list (identifier) @name @reference.import)
(use_list (scoped_identifier name: (identifier) @name) @reference.import)
