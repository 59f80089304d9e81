/*
 * The demo card viewer: picks a demo patient and hook, sends the CDS Hooks request a client
 * would send (from /demo/requests/<patient>/<hook>, prefetch included) to the service, and
 * renders each card: indicator, summary, detail (Markdown), suggestions, links, source, and
 * the override reasons, sending CDS Hooks feedback when a suggestion is accepted or a card
 * is dismissed.
 */
(function () {
  'use strict';

  var SCREENS = { 'patient-view': 'Patient View', 'order-select': 'Rx View', 'order-sign': 'Rx Sign' };
  var INDICATORS = ['info', 'warning', 'critical'];

  function $(id) { return document.getElementById(id); }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function setStatus(text, isError) {
    var status = $('status');
    status.textContent = text;
    status.className = isError ? 'status error' : 'status';
  }

  function outcomeText(body, fallback) {
    var issues = body && body.resourceType === 'OperationOutcome' && body.issue;
    if (issues && issues.length) {
      return issues.map(function (i) { return i.diagnostics || i.code; }).join('; ');
    }
    return fallback;
  }

  function fetchJson(url, options) {
    return fetch(url, options).then(function (response) {
      return response.text().then(function (text) {
        var body = null;
        try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
        if (!response.ok) {
          throw new Error(url + ': HTTP ' + response.status + ': '
            + outcomeText(body, text.slice(0, 200)));
        }
        return body;
      });
    });
  }

  function patientLine(request) {
    var patient = request.prefetch && request.prefetch.patient;
    if (!patient || patient.resourceType !== 'Patient') { return request.context.patientId; }
    var name = (patient.name && patient.name[0]) || {};
    var parts = [((name.given || []).join(' ') + ' ' + (name.family || '')).trim()];
    if (patient.gender) { parts.push(patient.gender); }
    if (patient.birthDate) { parts.push('born ' + patient.birthDate); }
    parts.push('id ' + patient.id);
    return parts.filter(Boolean).join(' \u00b7 ');
  }

  function draftNames(request) {
    var drafts = request.context.draftOrders;
    return ((drafts && drafts.entry) || []).map(function (entry) {
      var r = entry.resource || {};
      var concept = r.medicationCodeableConcept || r.code || {};
      return concept.text || ((concept.coding || [])[0] || {}).display || r.resourceType;
    });
  }

  function renderContext(demoPatient, request, hook) {
    var box = $('context');
    box.textContent = '';
    box.appendChild(el('h2', null, demoPatient ? demoPatient.title : request.context.patientId));
    box.appendChild(el('p', 'who', patientLine(request) + ' \u00b7 ' + hook + ' ('
      + (SCREENS[hook] || hook) + ')'));
    if (demoPatient && demoPatient.description) {
      box.appendChild(el('p', 'story', demoPatient.description));
    }
    var orders = draftNames(request);
    if (orders.length) {
      box.appendChild(el('p', 'orders', 'Draft orders: ' + orders.join('; ')));
    }
  }

  function sendFeedback(serviceId, item, card, node) {
    item.card = card.uuid;
    item.outcomeTimestamp = new Date().toISOString();
    var line = node.querySelector('.feedback') || node.appendChild(el('p', 'feedback'));
    return fetchJson('/cds-services/' + encodeURIComponent(serviceId) + '/feedback', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ feedback: [item] }),
    }).then(function () {
      line.className = 'feedback';
      line.textContent = 'Feedback sent: ' + item.outcome + '.';
    }).catch(function (error) {
      line.className = 'feedback error';
      line.textContent = 'Feedback failed: ' + error.message;
    });
  }

  function actionText(action) {
    var resource = action.resource || {};
    var what = action.description || resource.resourceType || '';
    return action.type + ' ' + (resource.resourceType || '') + ': ' + what;
  }

  function renderCard(card, serviceId) {
    var indicator = INDICATORS.indexOf(card.indicator) >= 0 ? card.indicator : 'info';
    var node = el('article', 'card indicator-' + indicator);
    var topic = card.source && card.source.topic;
    if (topic && topic.code) { node.setAttribute('data-topic', topic.code); }
    if (card.uuid) { node.setAttribute('data-uuid', card.uuid); }

    var header = el('header');
    header.appendChild(el('span', 'indicator', indicator));
    header.appendChild(el('h2', 'summary', card.summary));
    node.appendChild(header);

    if (card.detail) {
      var detail = el('div', 'detail');
      detail.innerHTML = window.CdsMarkdown.render(card.detail);  // escaped, then formatted
      node.appendChild(detail);
    }

    var actions = el('div', 'actions');
    (card.suggestions || []).forEach(function (suggestion) {
      var button = el('button', 'suggestion', suggestion.label);
      button.type = 'button';
      button.title = (suggestion.actions || []).map(actionText).join('\n');
      button.addEventListener('click', function () {
        button.classList.add('accepted');
        button.disabled = true;
        var item = { outcome: 'accepted' };
        if (suggestion.uuid) { item.acceptedSuggestions = [{ id: suggestion.uuid }]; }
        sendFeedback(serviceId, item, card, node);
      });
      actions.appendChild(button);
    });
    if (card.overrideReasons && card.overrideReasons.length) {
      var override = el('div', 'override');
      var reasons = el('select');
      reasons.setAttribute('aria-label', 'Override reason');
      card.overrideReasons.forEach(function (reason, i) {
        var option = el('option', null, reason.display || reason.code);
        option.value = String(i);
        reasons.appendChild(option);
      });
      var dismiss = el('button', 'dismiss', 'Dismiss');
      dismiss.type = 'button';
      dismiss.addEventListener('click', function () {
        var reason = card.overrideReasons[Number(reasons.value)];
        node.classList.add('dismissed');
        dismiss.disabled = true;
        sendFeedback(serviceId, { outcome: 'overridden', overrideReason: { reason: reason } },
          card, node);
      });
      override.appendChild(reasons);
      override.appendChild(dismiss);
      actions.appendChild(override);
    }
    if (actions.childNodes.length) { node.appendChild(actions); }

    if (card.links && card.links.length) {
      var links = el('ul', 'links');
      card.links.forEach(function (link) {
        var li = el('li');
        if (/^https?:\/\//i.test(link.url || '')) {
          var a = el('a', null, link.label || link.url);
          a.href = link.url;
          a.target = '_blank';
          a.rel = 'noopener noreferrer';
          li.appendChild(a);
        } else {
          li.textContent = link.label || '';
        }
        links.appendChild(li);
      });
      node.appendChild(links);
    }

    if (card.source) {
      var source = el('p', 'source');
      source.appendChild(document.createTextNode('Source: '));
      if (card.source.url && /^https?:\/\//i.test(card.source.url)) {
        var a = el('a', null, card.source.label);
        a.href = card.source.url;
        a.target = '_blank';
        a.rel = 'noopener noreferrer';
        source.appendChild(a);
      } else {
        source.appendChild(document.createTextNode(card.source.label || ''));
      }
      if (topic) {
        source.appendChild(document.createTextNode(' \u00b7 topic: '
          + (topic.display ? topic.display + ' (' + topic.code + ')' : topic.code)));
      }
      node.appendChild(source);
    }
    return node;
  }

  function callService(demoPatient, patientId, hook) {
    var serviceId;
    var request;
    var started;
    setStatus('Calling the service\u2026');
    return fetchJson('/cds-services').then(function (discovery) {
      var service = (discovery.services || []).filter(function (s) { return s.hook === hook; })[0];
      if (!service) { throw new Error('the service offers no ' + hook + ' service'); }
      serviceId = service.id;
      return fetchJson('/demo/requests/' + encodeURIComponent(patientId) + '/'
        + encodeURIComponent(hook));
    }).then(function (body) {
      request = body;
      renderContext(demoPatient, request, hook);
      $('request-json').textContent = JSON.stringify(request, null, 2);
      started = performance.now();
      return fetchJson('/cds-services/' + encodeURIComponent(serviceId), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(request),
      });
    }).then(function (response) {
      var ms = Math.round(performance.now() - started);
      $('response-json').textContent = JSON.stringify(response, null, 2);
      var cards = (response && response.cards) || [];
      var list = $('cards');
      list.textContent = '';
      cards.forEach(function (card) { list.appendChild(renderCard(card, serviceId)); });
      if (!cards.length) { list.appendChild(el('p', 'none', 'No cards for this call.')); }
      setStatus(cards.length + (cards.length === 1 ? ' card' : ' cards') + ' from '
        + serviceId + ' in ' + ms + ' ms.');
      document.body.setAttribute('data-state', 'done');
    });
  }

  function start() {
    var params = new URLSearchParams(window.location.search);
    fetchJson('/demo/patients').then(function (demo) {
      var patients = demo.patients || [];
      var select = $('patient');
      patients.forEach(function (p) {
        var option = el('option', null, (p.name || p.patientId) + ' \u2014 ' + p.title);
        option.value = p.patientId + '|' + p.hook;
        select.appendChild(option);
      });
      var patientId = params.get('patient') || (patients[0] && patients[0].patientId);
      if (!patientId) { throw new Error('no demo patients: fixtures/scenarios is empty'); }
      var matching = patients.filter(function (p) { return p.patientId === patientId; });
      var hook = params.get('hook') || (matching[0] && matching[0].hook) || 'patient-view';
      var chosen = matching.filter(function (p) { return p.hook === hook; })[0] || matching[0];
      if (chosen) { select.value = chosen.patientId + '|' + chosen.hook; }
      $('hook').value = hook;
      select.addEventListener('change', function () {
        $('hook').value = select.value.split('|')[1];
      });
      $('picker').addEventListener('submit', function (event) {
        event.preventDefault();
        var query = new URLSearchParams({ patient: select.value.split('|')[0], hook: $('hook').value });
        window.location.search = query.toString();
      });
      return callService(chosen, patientId, hook);
    }).catch(function (error) {
      setStatus(error.message, true);
      document.body.setAttribute('data-state', 'error');
    });
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
