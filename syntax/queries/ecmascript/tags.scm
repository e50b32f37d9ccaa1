; ECMAScript tags shared by JavaScript and TypeScript/TSX (each row's own query comes first, section by
; section; see `LanguageSpec::tags_source`). Patterns here must be valid in every grammar that inherits them.
; Captures: @name, @definition.<kind> / @reference.<kind>, @import. The first pattern that captures a node wins.

; ---- definitions ----
(method_definition name: (property_identifier) @name) @definition.method
(function_declaration name: (identifier) @name) @definition.function
(generator_function_declaration name: (identifier) @name) @definition.function
(function_expression name: (identifier) @name) @definition.function
(lexical_declaration
  (variable_declarator
    name: (identifier) @name
    value: [(arrow_function) (function_expression)]) @definition.function)
(variable_declaration
  (variable_declarator
    name: (identifier) @name
    value: [(arrow_function) (function_expression)]) @definition.function)
(pair
  key: (property_identifier) @name
  value: [(arrow_function) (function_expression)]) @definition.function
(program (lexical_declaration (variable_declarator name: (identifier) @name) @definition.constant))
(program (export_statement declaration: (lexical_declaration (variable_declarator name: (identifier) @name) @definition.constant)))

; ---- references ----
(call_expression function: (identifier) @name) @reference.call
(call_expression function: (member_expression property: (property_identifier) @name)) @reference.call
(new_expression constructor: (identifier) @name) @reference.class

; ---- imports ----
(import_statement source: (string) @import)
(export_statement source: (string) @import)
(import_specifier name: (identifier) @name @reference.import)
(import_clause (identifier) @name @reference.import)
(namespace_import (identifier) @name @reference.import)
(call_expression
  function: (identifier) @_require
  arguments: (arguments (string) @import)
  (#eq? @_require "require"))
