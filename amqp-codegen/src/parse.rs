//! XML → [`Spec`].

use std::collections::HashMap;
use std::fmt;

use roxmltree::{Document, Node};

use crate::model::{
    Assert, Chassis, Class, Constant, Docs, Domain, Field, Method, Rule, Spec, WireType,
};

/// Why a protocol definition could not be read.
///
/// Every error names the element it is about and the line (and column) where that element
/// starts in the XML file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// 1-based line of the offending element (or of the XML syntax error).
    pub line: u32,
    /// 1-based column.
    pub column: u32,
    /// The element, described as it appears in the file: `<field name="exchange"> in
    /// basic.publish`.
    pub element: String,
    /// What is wrong.
    pub kind: SpecErrorKind,
}

/// What is wrong with a protocol definition.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecErrorKind {
    /// The text is not well-formed XML.
    NotXml(String),
    /// The root element is not `<amqp>`.
    WrongRoot(String),
    /// A required attribute is absent.
    MissingAttribute(&'static str),
    /// An attribute that must be a number is not one, or does not fit.
    BadNumber {
        /// The attribute.
        attribute: &'static str,
        /// Its value.
        value: String,
    },
    /// An attribute that must be `0` or `1` is something else.
    BadFlag {
        /// The attribute.
        attribute: &'static str,
        /// Its value.
        value: String,
    },
    /// A field names a domain the spec does not define.
    UnknownDomain(String),
    /// A domain or field names a type that is neither a wire type nor a domain.
    UnknownType(String),
    /// A field gives both `domain` and `type`, and they disagree.
    TypeMismatch {
        /// The type the domain resolves to.
        domain_type: WireType,
        /// The type the `type` attribute names.
        type_attribute: String,
    },
    /// Domains refer to each other in a loop.
    DomainCycle(Vec<String>),
    /// Two elements of the same kind, in the same scope, have the same `index`.
    DuplicateIndex {
        /// The index.
        index: u16,
        /// Line of the element that used it first.
        first_line: u32,
    },
    /// Two elements of the same kind, in the same scope, have the same `name`.
    DuplicateName {
        /// The name.
        name: String,
        /// Line of the element that used it first.
        first_line: u32,
    },
    /// A `<response>` names a method its class does not have.
    UnknownResponse(String),
    /// An `<assert>` is malformed.
    BadAssert(String),
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}: ",
            self.line, self.column, self.element
        )?;
        match &self.kind {
            SpecErrorKind::NotXml(msg) => write!(f, "not well-formed XML: {msg}"),
            SpecErrorKind::WrongRoot(name) => {
                write!(f, "the root element is <{name}>, expected <amqp>")
            }
            SpecErrorKind::MissingAttribute(attr) => {
                write!(f, "missing required attribute `{attr}`")
            }
            SpecErrorKind::BadNumber { attribute, value } => {
                write!(
                    f,
                    "attribute `{attribute}` is not a number in range: {value:?}"
                )
            }
            SpecErrorKind::BadFlag { attribute, value } => {
                write!(
                    f,
                    "attribute `{attribute}` must be \"0\" or \"1\", not {value:?}"
                )
            }
            SpecErrorKind::UnknownDomain(name) => write!(f, "unknown domain {name:?}"),
            SpecErrorKind::UnknownType(name) => {
                write!(
                    f,
                    "unknown type {name:?} (neither a wire type nor a domain)"
                )
            }
            SpecErrorKind::TypeMismatch {
                domain_type,
                type_attribute,
            } => write!(
                f,
                "the domain resolves to {domain_type} but the `type` attribute says \
                 {type_attribute:?}"
            ),
            SpecErrorKind::DomainCycle(names) => {
                write!(
                    f,
                    "domains refer to each other in a loop: {}",
                    names.join(" -> ")
                )
            }
            SpecErrorKind::DuplicateIndex { index, first_line } => {
                write!(
                    f,
                    "duplicate index {index} (first used on line {first_line})"
                )
            }
            SpecErrorKind::DuplicateName { name, first_line } => {
                write!(
                    f,
                    "duplicate name {name:?} (first used on line {first_line})"
                )
            }
            SpecErrorKind::UnknownResponse(name) => {
                write!(
                    f,
                    "response names method {name:?}, which the class does not have"
                )
            }
            SpecErrorKind::BadAssert(msg) => write!(f, "bad assert: {msg}"),
        }
    }
}

impl std::error::Error for SpecError {}

/// Parses a protocol definition in the official AMQP XML schema.
///
/// Accepts the full schema: `<doc>` (including `type="grammar"`), `<rule>`, `<chassis>`,
/// `label` and `comment` attributes, XML comments and CRLF line endings. Elements this
/// generator has no use for are skipped.
///
/// # Errors
/// A [`SpecError`] naming the element and line for malformed XML, a missing or malformed
/// attribute, an unknown domain or type, a domain cycle, a duplicate index or name, or a
/// response that names no method of its class.
pub fn parse(xml: &str) -> Result<Spec, SpecError> {
    let doc = Document::parse(xml).map_err(|e| {
        let pos = e.pos();
        SpecError {
            line: pos.row,
            column: pos.col,
            element: "document".to_owned(),
            kind: SpecErrorKind::NotXml(e.to_string()),
        }
    })?;
    Parser { doc: &doc }.spec()
}

struct Parser<'a, 'input> {
    doc: &'a Document<'input>,
}

/// The scope an element sits in, for error messages (`in basic.publish`).
#[derive(Clone, Copy)]
enum Scope<'s> {
    Top,
    Class(&'s str),
    Method(&'s str, &'s str),
}

impl fmt::Display for Scope<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Top => Ok(()),
            Self::Class(c) => write!(f, " in class {c}"),
            Self::Method(c, m) => write!(f, " in {c}.{m}"),
        }
    }
}

impl<'input> Parser<'_, 'input> {
    fn pos(&self, node: Node<'_, 'input>) -> (u32, u32) {
        let pos = self.doc.text_pos_at(node.range().start);
        (pos.row, pos.col)
    }

    fn line(&self, node: Node<'_, 'input>) -> u32 {
        self.pos(node).0
    }

    fn error(&self, node: Node<'_, 'input>, scope: Scope<'_>, kind: SpecErrorKind) -> SpecError {
        let (line, column) = self.pos(node);
        let tag = node.tag_name().name();
        let element = match node.attribute("name") {
            Some(name) => format!("<{tag} name=\"{name}\">{scope}"),
            None => format!("<{tag}>{scope}"),
        };
        SpecError {
            line,
            column,
            element,
            kind,
        }
    }

    fn required<'n>(
        &self,
        node: Node<'n, 'input>,
        scope: Scope<'_>,
        attr: &'static str,
    ) -> Result<&'n str, SpecError> {
        node.attribute(attr)
            .ok_or_else(|| self.error(node, scope, SpecErrorKind::MissingAttribute(attr)))
    }

    fn number<T: std::str::FromStr>(
        &self,
        node: Node<'_, 'input>,
        scope: Scope<'_>,
        attr: &'static str,
        value: &str,
    ) -> Result<T, SpecError> {
        value.trim().parse().map_err(|_| {
            self.error(
                node,
                scope,
                SpecErrorKind::BadNumber {
                    attribute: attr,
                    value: value.to_owned(),
                },
            )
        })
    }

    fn required_number<T: std::str::FromStr>(
        &self,
        node: Node<'_, 'input>,
        scope: Scope<'_>,
        attr: &'static str,
    ) -> Result<T, SpecError> {
        let value = self.required(node, scope, attr)?;
        self.number(node, scope, attr, value)
    }

    fn flag(
        &self,
        node: Node<'_, 'input>,
        scope: Scope<'_>,
        attr: &'static str,
    ) -> Result<bool, SpecError> {
        match node.attribute(attr).map(str::trim) {
            None | Some("0") => Ok(false),
            Some("1") => Ok(true),
            Some(other) => Err(self.error(
                node,
                scope,
                SpecErrorKind::BadFlag {
                    attribute: attr,
                    value: other.to_owned(),
                },
            )),
        }
    }

    fn spec(&self) -> Result<Spec, SpecError> {
        let root = self.doc.root_element();
        if root.tag_name().name() != "amqp" {
            return Err(self.error(
                root,
                Scope::Top,
                SpecErrorKind::WrongRoot(root.tag_name().name().to_owned()),
            ));
        }
        let major = self.required_number(root, Scope::Top, "major")?;
        let minor = self.required_number(root, Scope::Top, "minor")?;
        let revision = match root.attribute("revision") {
            Some(v) => self.number(root, Scope::Top, "revision", v)?,
            None => 0,
        };
        let port = self.required_number(root, Scope::Top, "port")?;

        let mut constants = Vec::new();
        let mut constant_names = HashMap::new();
        for node in children(root, "constant") {
            let c = self.constant(node)?;
            self.unique_name(&mut constant_names, node, Scope::Top, &c.name)?;
            constants.push(c);
        }

        let domains = self.domains(root)?;

        let mut classes = Vec::new();
        let mut class_names = HashMap::new();
        let mut class_indexes = HashMap::new();
        for node in children(root, "class") {
            let class = self.class(node, &domains)?;
            self.unique_name(&mut class_names, node, Scope::Top, &class.name)?;
            self.unique_index(&mut class_indexes, node, Scope::Top, class.index)?;
            classes.push(class);
        }

        Ok(Spec {
            major,
            minor,
            revision,
            port,
            comment: root.attribute("comment").map(str::to_owned),
            docs: self.docs(root),
            constants,
            domains,
            classes,
        })
    }

    fn unique_name(
        &self,
        seen: &mut HashMap<String, u32>,
        node: Node<'_, 'input>,
        scope: Scope<'_>,
        name: &str,
    ) -> Result<(), SpecError> {
        if let Some(&first_line) = seen.get(name) {
            return Err(self.error(
                node,
                scope,
                SpecErrorKind::DuplicateName {
                    name: name.to_owned(),
                    first_line,
                },
            ));
        }
        seen.insert(name.to_owned(), self.line(node));
        Ok(())
    }

    fn unique_index(
        &self,
        seen: &mut HashMap<u16, u32>,
        node: Node<'_, 'input>,
        scope: Scope<'_>,
        index: u16,
    ) -> Result<(), SpecError> {
        if let Some(&first_line) = seen.get(&index) {
            return Err(self.error(
                node,
                scope,
                SpecErrorKind::DuplicateIndex { index, first_line },
            ));
        }
        seen.insert(index, self.line(node));
        Ok(())
    }

    fn constant(&self, node: Node<'_, 'input>) -> Result<Constant, SpecError> {
        Ok(Constant {
            name: self.required(node, Scope::Top, "name")?.to_owned(),
            value: self.required_number(node, Scope::Top, "value")?,
            class: node.attribute("class").map(str::to_owned),
            docs: self.docs(node),
            line: self.line(node),
        })
    }

    /// Reads every `<domain>`, then resolves each to a wire type by following `type` through
    /// other domains. A domain whose `type` is its own name (`<domain name="octet"
    /// type="octet"/>`) or a wire type's name ends the chain.
    fn domains(&self, root: Node<'_, 'input>) -> Result<Vec<Domain>, SpecError> {
        struct Raw<'n, 'i> {
            node: Node<'n, 'i>,
            name: String,
            type_name: String,
            asserts: Vec<Assert>,
        }
        let mut raws = Vec::new();
        let mut names = HashMap::new();
        for node in children(root, "domain") {
            let name = self.required(node, Scope::Top, "name")?.to_owned();
            let type_name = self.required(node, Scope::Top, "type")?.to_owned();
            self.unique_name(&mut names, node, Scope::Top, &name)?;
            let asserts = self.asserts(node, Scope::Top)?;
            raws.push(Raw {
                node,
                name,
                type_name,
                asserts,
            });
        }
        let by_name: HashMap<&str, &Raw<'_, '_>> =
            raws.iter().map(|r| (r.name.as_str(), r)).collect();

        let mut domains = Vec::with_capacity(raws.len());
        for raw in &raws {
            let mut chain: Vec<String> = Vec::new();
            let mut asserts = raw.asserts.clone();
            let mut current = raw;
            let ty = loop {
                let next = current.type_name.as_str();
                let refers_to_domain = next != current.name;
                match by_name.get(next) {
                    Some(&target) if refers_to_domain => {
                        if target.name == raw.name || chain.contains(&target.name) {
                            let mut cycle = vec![raw.name.clone()];
                            cycle.extend(chain.iter().cloned());
                            cycle.push(target.name.clone());
                            return Err(self.error(
                                raw.node,
                                Scope::Top,
                                SpecErrorKind::DomainCycle(cycle),
                            ));
                        }
                        chain.push(target.name.clone());
                        asserts.extend(target.asserts.iter().cloned());
                        current = target;
                    }
                    _ => match WireType::from_xml_name(next) {
                        Some(ty) => break ty,
                        None => {
                            return Err(self.error(
                                current.node,
                                Scope::Top,
                                SpecErrorKind::UnknownType(next.to_owned()),
                            ))
                        }
                    },
                }
            };
            domains.push(Domain {
                name: raw.name.clone(),
                type_name: raw.type_name.clone(),
                ty,
                chain,
                asserts,
                label: raw.node.attribute("label").map(str::to_owned),
                docs: self.docs(raw.node),
                line: self.line(raw.node),
            });
        }
        Ok(domains)
    }

    fn asserts(&self, node: Node<'_, 'input>, scope: Scope<'_>) -> Result<Vec<Assert>, SpecError> {
        let mut asserts = Vec::new();
        for a in children(node, "assert") {
            let check = self.required(a, scope, "check")?;
            let value = a.attribute("value");
            let assert = match check {
                "notnull" => Assert::NotNull,
                "length" => {
                    let value = value.ok_or_else(|| {
                        self.error(a, scope, SpecErrorKind::MissingAttribute("value"))
                    })?;
                    Assert::Length(self.number(a, scope, "value", value)?)
                }
                "regexp" => {
                    let value = value.ok_or_else(|| {
                        self.error(a, scope, SpecErrorKind::MissingAttribute("value"))
                    })?;
                    Assert::Regexp(value.to_owned())
                }
                other => Assert::Other {
                    check: other.to_owned(),
                    attributes: a
                        .attributes()
                        .filter(|at| at.name() != "check")
                        .map(|at| (at.name().to_owned(), at.value().to_owned()))
                        .collect(),
                },
            };
            asserts.push(assert);
        }
        Ok(asserts)
    }

    fn chassis(&self, node: Node<'_, 'input>, scope: Scope<'_>) -> Result<Vec<Chassis>, SpecError> {
        children(node, "chassis")
            .map(|c| {
                Ok(Chassis {
                    name: self.required(c, scope, "name")?.to_owned(),
                    implement: c.attribute("implement").unwrap_or("MAY").to_owned(),
                })
            })
            .collect()
    }

    fn class(&self, node: Node<'_, 'input>, domains: &[Domain]) -> Result<Class, SpecError> {
        let name = self.required(node, Scope::Top, "name")?.to_owned();
        let index = self.required_number(node, Scope::Top, "index")?;
        let scope = Scope::Class(&name);

        let mut properties = Vec::new();
        let mut property_names = HashMap::new();
        for f in children(node, "field") {
            let field = self.field(f, scope, domains)?;
            self.unique_name(&mut property_names, f, scope, &field.name)?;
            properties.push(field);
        }

        let mut methods = Vec::new();
        let mut method_names = HashMap::new();
        let mut method_indexes = HashMap::new();
        let mut response_nodes = Vec::new();
        for m in children(node, "method") {
            let method = self.method(m, &name, domains)?;
            self.unique_name(&mut method_names, m, scope, &method.name)?;
            self.unique_index(&mut method_indexes, m, scope, method.index)?;
            response_nodes.extend(children(m, "response").map(|r| (r, method.name.clone())));
            methods.push(method);
        }
        for (r, method) in response_nodes {
            let target = self.required(r, Scope::Method(&name, &method), "name")?;
            if !method_names.contains_key(target) {
                return Err(self.error(
                    r,
                    Scope::Method(&name, &method),
                    SpecErrorKind::UnknownResponse(target.to_owned()),
                ));
            }
        }

        Ok(Class {
            index,
            handler: node.attribute("handler").map(str::to_owned),
            label: node.attribute("label").map(str::to_owned),
            docs: self.docs(node),
            chassis: self.chassis(node, scope)?,
            properties,
            methods,
            line: self.line(node),
            name,
        })
    }

    fn method(
        &self,
        node: Node<'_, 'input>,
        class: &str,
        domains: &[Domain],
    ) -> Result<Method, SpecError> {
        let name = self.required(node, Scope::Class(class), "name")?.to_owned();
        let index = self.required_number(node, Scope::Class(class), "index")?;
        let scope = Scope::Method(class, &name);

        let mut fields = Vec::new();
        let mut field_names = HashMap::new();
        for f in children(node, "field") {
            let field = self.field(f, scope, domains)?;
            self.unique_name(&mut field_names, f, scope, &field.name)?;
            fields.push(field);
        }
        let responses = children(node, "response")
            .map(|r| self.required(r, scope, "name").map(str::to_owned))
            .collect::<Result<Vec<_>, _>>()?;

        Ok(Method {
            index,
            synchronous: self.flag(node, scope, "synchronous")?,
            content: self.flag(node, scope, "content")?,
            deprecated: self.flag(node, scope, "deprecated")?,
            responses,
            chassis: self.chassis(node, scope)?,
            label: node.attribute("label").map(str::to_owned),
            docs: self.docs(node),
            fields,
            line: self.line(node),
            name,
        })
    }

    fn field(
        &self,
        node: Node<'_, 'input>,
        scope: Scope<'_>,
        domains: &[Domain],
    ) -> Result<Field, SpecError> {
        let name = self.required(node, scope, "name")?.to_owned();
        let reserved = self.flag(node, scope, "reserved")?;
        let type_attr = node.attribute("type");
        let (domain, ty, domain_asserts) = match node.attribute("domain") {
            Some(d) => {
                let Some(dom) = domains.iter().find(|x| x.name == d) else {
                    return Err(self.error(
                        node,
                        scope,
                        SpecErrorKind::UnknownDomain(d.to_owned()),
                    ));
                };
                if let Some(t) = type_attr {
                    if WireType::from_xml_name(t) != Some(dom.ty) {
                        return Err(self.error(
                            node,
                            scope,
                            SpecErrorKind::TypeMismatch {
                                domain_type: dom.ty,
                                type_attribute: t.to_owned(),
                            },
                        ));
                    }
                }
                (Some(d.to_owned()), dom.ty, dom.asserts.clone())
            }
            None => {
                let Some(t) = type_attr else {
                    return Err(self.error(node, scope, SpecErrorKind::MissingAttribute("domain")));
                };
                match WireType::from_xml_name(t) {
                    Some(ty) => (None, ty, Vec::new()),
                    // The schema allows `type` to name a domain, too.
                    None => match domains.iter().find(|x| x.name == t) {
                        Some(dom) => (Some(t.to_owned()), dom.ty, dom.asserts.clone()),
                        None => {
                            return Err(self.error(
                                node,
                                scope,
                                SpecErrorKind::UnknownType(t.to_owned()),
                            ))
                        }
                    },
                }
            }
        };
        Ok(Field {
            reserved,
            domain,
            ty,
            domain_asserts,
            field_asserts: self.asserts(node, scope)?,
            label: node.attribute("label").map(str::to_owned),
            docs: self.docs(node),
            line: self.line(node),
            name,
        })
    }

    fn docs(&self, node: Node<'_, 'input>) -> Docs {
        let mut docs = Docs::default();
        for child in node.children().filter(Node::is_element) {
            match child.tag_name().name() {
                "doc" => match (child.attribute("type"), child.attribute("name")) {
                    (Some("grammar"), _) => docs.grammar.push(grammar_lines(&text_of(child))),
                    (Some("scenario"), _) => {}
                    (_, Some("rule")) => docs.rules.push(Rule {
                        name: None,
                        paragraphs: paragraphs(&text_of(child)),
                    }),
                    _ => docs.paragraphs.extend(paragraphs(&text_of(child))),
                },
                "rule" => docs.rules.push(Rule {
                    name: child.attribute("name").map(str::to_owned),
                    paragraphs: children(child, "doc")
                        .filter(|d| d.attribute("type").is_none())
                        .flat_map(|d| paragraphs(&text_of(d)))
                        .collect(),
                }),
                _ => {}
            }
        }
        docs
    }
}

fn children<'a, 'input: 'a>(
    node: Node<'a, 'input>,
    tag: &'static str,
) -> impl Iterator<Item = Node<'a, 'input>> + 'a {
    node.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == tag)
}

/// All text inside an element, including text inside nested elements.
fn text_of(node: Node<'_, '_>) -> String {
    node.descendants()
        .filter(Node::is_text)
        .filter_map(|t| t.text())
        .collect()
}

/// Splits text into paragraphs at blank lines and collapses the whitespace inside each.
fn paragraphs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        for word in line.split_whitespace() {
            if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(word);
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The lines of a grammar block with surrounding blank lines and common indentation removed.
fn grammar_lines(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end()).collect();
    let first = lines
        .iter()
        .position(|l| !l.is_empty())
        .unwrap_or(lines.len());
    let last = lines
        .iter()
        .rposition(|l| !l.is_empty())
        .map_or(first, |i| i + 1);
    let body = lines.get(first..last).unwrap_or_default();
    let indent = body
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    body.iter()
        .map(|l| l.get(indent..).unwrap_or("").to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_split_at_blank_lines_and_collapse_whitespace() {
        let text = "\n   One  two\n   three.\n  \r\n   Four\tfive.\n";
        assert_eq!(paragraphs(text), vec!["One two three.", "Four five."]);
    }

    #[test]
    fn grammar_lines_keep_relative_indentation() {
        let text = "\n    a = b\n      / c\n\n    d = e\n  ";
        assert_eq!(grammar_lines(text), vec!["a = b", "  / c", "", "d = e"]);
    }
}
