; Python tags for qwen-ls: upstream tree-sitter-python tags.scm, extended with methods, type references
; (annotations, base classes) and import references.
; Captures: @name, @definition.<kind> / @reference.<kind>, @import. The first pattern that captures a node wins.

; ---- definitions ----
(class_definition
  body: (block (function_definition name: (identifier) @name) @definition.method))
(class_definition
  body: (block (decorated_definition definition: (function_definition name: (identifier) @name) @definition.method)))
(class_definition name: (identifier) @name) @definition.class
(function_definition name: (identifier) @name) @definition.function
(module (expression_statement (assignment left: (identifier) @name) @definition.constant))

; ---- references ----
(call function: (identifier) @name) @reference.call
(call function: (attribute attribute: (identifier) @name)) @reference.call
(class_definition superclasses: (argument_list (identifier) @name @reference.implementation))
(class_definition superclasses: (argument_list (attribute attribute: (identifier) @name) @reference.implementation))
(type (identifier) @name @reference.type)
(type (generic_type (identifier) @name @reference.type))
(type (subscript value: (identifier) @name @reference.type))
(decorator (identifier) @name @reference.call)

; ---- imports ----
(import_statement name: (dotted_name) @import)
(import_statement name: (aliased_import name: (dotted_name) @import))
(import_from_statement module_name: (_) @import)
(import_from_statement name: (dotted_name (identifier) @name @reference.import))
(import_from_statement name: (aliased_import name: (dotted_name (identifier) @name @reference.import)))
