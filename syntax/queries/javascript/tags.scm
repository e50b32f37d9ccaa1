; JavaScript tags for qwen-ls: upstream tree-sitter-javascript tags.scm (without doc-comment captures),
; extended with top-level constants, class heritage and import/require references.
; Captures: @name, @definition.<kind> / @reference.<kind>, @import. The first pattern that captures a node wins.

; ---- definitions ----
(method_definition name: (property_identifier) @name) @definition.method
(class_declaration name: (_) @name) @definition.class
(class name: (_) @name) @definition.class
(function_declaration name: (identifier) @name) @definition.function
(generator_function_declaration name: (identifier) @name) @definition.function
(function_expression name: (identifier) @name) @definition.function
(generator_function name: (identifier) @name) @definition.function
(lexical_declaration
  (variable_declarator
    name: (identifier) @name
    value: [(arrow_function) (function_expression)]) @definition.function)
(variable_declaration
  (variable_declarator
    name: (identifier) @name
    value: [(arrow_function) (function_expression)]) @definition.function)
(assignment_expression
  left: [
    (identifier) @name
    (member_expression property: (property_identifier) @name)
  ]
  right: [(arrow_function) (function_expression)]) @definition.function
(pair
  key: (property_identifier) @name
  value: [(arrow_function) (function_expression)]) @definition.function
(program (lexical_declaration (variable_declarator name: (identifier) @name) @definition.constant))
(program (export_statement declaration: (lexical_declaration (variable_declarator name: (identifier) @name) @definition.constant)))

; ---- references ----
(call_expression function: (identifier) @name) @reference.call
(call_expression function: (member_expression property: (property_identifier) @name)) @reference.call
(new_expression constructor: (identifier) @name) @reference.class
(new_expression constructor: (member_expression property: (property_identifier) @name)) @reference.class
(class_heritage (identifier) @name @reference.implementation)
(class_heritage (member_expression property: (property_identifier) @name) @reference.implementation)

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
