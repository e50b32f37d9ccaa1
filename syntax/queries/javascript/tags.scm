; JavaScript tags for qwen-ls: upstream tree-sitter-javascript tags.scm (without doc-comment captures),
; extended with top-level constants, class heritage and import/require references. The patterns TypeScript
; shares are in ecmascript/tags.scm, which this row inherits.
; Captures: @name, @definition.<kind> / @reference.<kind>, @import. The first pattern that captures a node wins.

; ---- definitions ----
(class_declaration name: (_) @name) @definition.class
(class name: (_) @name) @definition.class
(generator_function name: (identifier) @name) @definition.function
(assignment_expression
  left: [
    (identifier) @name
    (member_expression property: (property_identifier) @name)
  ]
  right: [(arrow_function) (function_expression)]) @definition.function

; ---- references ----
(new_expression constructor: (member_expression property: (property_identifier) @name)) @reference.class
(class_heritage (identifier) @name @reference.implementation)
(class_heritage (member_expression property: (property_identifier) @name) @reference.implementation)

; ---- imports ----
