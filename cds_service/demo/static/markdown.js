/*
 * A tiny, safe Markdown renderer for CDS Hooks card details: paragraphs, headings, bullet and
 * numbered lists, pipe tables, **bold**, *italic*, `code` and [links](https://...).
 * Every character of the input is HTML-escaped first; only the tags made here are emitted, and
 * a link is kept only when its target is http(s) or mailto.
 */
(function (global) {
  'use strict';

  var ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, function (c) { return ESCAPES[c]; });
  }

  var SAFE_URL = /^(https?:\/\/|mailto:)/i;

  // Inline formatting over text that is already escaped.
  function inline(escaped) {
    var codes = [];
    var text = escaped.replace(/`([^`]+)`/g, function (_, code) {
      codes.push('<code>' + code + '</code>');
      return '\u0000' + (codes.length - 1) + '\u0000';
    });
    text = text.replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, function (_, label, url) {
      if (!SAFE_URL.test(url)) { return label; }
      return '<a href="' + url + '" target="_blank" rel="noopener noreferrer">' + label + '</a>';
    });
    text = text.replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>');
    text = text.replace(/__([^_]+)__/g, '<strong>$1</strong>');
    text = text.replace(/(^|[^*\w])\*([^*\s][^*]*)\*(?!\w)/g, '$1<em>$2</em>');
    text = text.replace(/(^|[^_\w])_([^_\s][^_]*)_(?!\w)/g, '$1<em>$2</em>');
    return text.replace(/\u0000(\d+)\u0000/g, function (_, i) { return codes[Number(i)]; });
  }

  function cells(line) {
    var body = line.trim().replace(/^\|/, '').replace(/\|$/, '');
    return body.split(/(?<!\\)\|/).map(function (cell) {
      return cell.trim().replace(/\\\|/g, '|');
    });
  }

  var TABLE_RULE = /^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$/;
  var BULLET = /^\s*[-*+]\s+(.*)$/;
  var NUMBERED = /^\s*\d+[.)]\s+(.*)$/;
  var HEADING = /^(#{1,6})\s+(.*)$/;

  function render(markdown) {
    var lines = escapeHtml(markdown || '').replace(/\r\n?/g, '\n').split('\n');
    var html = [];
    var i = 0;
    while (i < lines.length) {
      var line = lines[i];
      if (!line.trim()) { i += 1; continue; }
      var heading = HEADING.exec(line);
      if (heading) {
        var level = Math.min(heading[1].length + 2, 6);  // card headings sit below the summary
        html.push('<h' + level + '>' + inline(heading[2]) + '</h' + level + '>');
        i += 1;
        continue;
      }
      if (line.indexOf('|') !== -1 && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1])) {
        var head = cells(line);
        var rows = [];
        i += 2;
        while (i < lines.length && lines[i].indexOf('|') !== -1 && lines[i].trim()) {
          rows.push(cells(lines[i]));
          i += 1;
        }
        html.push('<table><thead><tr>' + head.map(function (c) {
          return '<th>' + inline(c) + '</th>';
        }).join('') + '</tr></thead><tbody>' + rows.map(function (row) {
          return '<tr>' + head.map(function (_, k) {
            return '<td>' + inline(row[k] || '') + '</td>';
          }).join('') + '</tr>';
        }).join('') + '</tbody></table>');
        continue;
      }
      var listKind = BULLET.test(line) ? 'ul' : (NUMBERED.test(line) ? 'ol' : null);
      if (listKind) {
        var pattern = listKind === 'ul' ? BULLET : NUMBERED;
        var items = [];
        while (i < lines.length && pattern.test(lines[i])) {
          var item = pattern.exec(lines[i])[1];
          i += 1;
          // Indented continuation lines belong to the item.
          while (i < lines.length && /^\s{2,}\S/.test(lines[i]) && !BULLET.test(lines[i])
                 && !NUMBERED.test(lines[i])) {
            item += ' ' + lines[i].trim();
            i += 1;
          }
          items.push('<li>' + inline(item) + '</li>');
        }
        html.push('<' + listKind + '>' + items.join('') + '</' + listKind + '>');
        continue;
      }
      var paragraph = [];
      while (i < lines.length && lines[i].trim() && !HEADING.test(lines[i])
             && !BULLET.test(lines[i]) && !NUMBERED.test(lines[i])
             && !(lines[i].indexOf('|') !== -1 && i + 1 < lines.length
                  && TABLE_RULE.test(lines[i + 1]))) {
        paragraph.push(lines[i].trim());
        i += 1;
      }
      html.push('<p>' + inline(paragraph.join(' ')) + '</p>');
    }
    return html.join('\n');
  }

  global.CdsMarkdown = { render: render, escapeHtml: escapeHtml };
})(window);
